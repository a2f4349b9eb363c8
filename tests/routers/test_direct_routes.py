"""`app.routers.direct`: the routes called without FastAPI's dependency solver answer exactly as solved ones.

The direct handler relies on what FastAPI's `Dependant` records of a route (its parameter kinds). A FastAPI
upgrade that adds a kind of input must fail here, loudly, rather than be skipped by the direct handler.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, request_response

from app.routers.base import DocumentRoute
from app.routers.direct import direct_handler
from tests.support import World

BASE = "/api/v1/plugins/"

# Every field of FastAPI's `Dependant` the direct handler was written against (fastapi 0.16x). A new field
# may be a new kind of input that the direct handler would not pass: read it, then extend this list.
KNOWN_DEPENDANT_FIELDS = {
    "path_params",
    "query_params",
    "header_params",
    "cookie_params",
    "body_params",
    "dependencies",
    "name",
    "call",
    "request_param_name",
    "websocket_param_name",
    "http_connection_param_name",
    "response_param_name",
    "background_tasks_param_name",
    "security_scopes_param_name",
    "own_oauth_scopes",
    "parent_oauth_scopes",
    "use_cache",
    "path",
    "scope",
    "concurrency",
}


def test_the_dependant_fields_are_the_ones_the_direct_handler_knows() -> None:
    assert {field.name for field in dataclasses.fields(Dependant)} == KNOWN_DEPENDANT_FIELDS


def _direct_routes(app: FastAPI) -> set[str]:
    async def solved(request: object) -> object:  # never called: only whether a direct handler exists
        raise AssertionError

    return {
        f"{sorted(route.methods)[0]} {route.path}"
        for route in app.routes
        if isinstance(route, APIRoute) and direct_handler(route, solved) is not None  # type: ignore[arg-type]
    }


def test_only_routes_of_plain_parameters_and_one_json_body_are_direct(app: FastAPI) -> None:
    direct = _direct_routes(app)
    assert "GET /api/v1/plugins/{id}/" in direct
    assert "GET /api/v1/plugins/" in direct
    assert {"POST /api/v1/plugins/{id}/call/", "POST /api/v1/plugins/selection/"} <= direct
    # Routes with a session or typed path parameters keep FastAPI's solver.
    assert "POST /api/v1/plugins/" not in direct
    assert not any(path.startswith(("PUT ", "PATCH ", "DELETE ")) for path in direct)
    assert not any("/cli/" in path for path in direct)


PER_REQUEST = {"requestId", "elapsedMs"}  # a problem's request id, a tool call's time


def _without_request_id(body: object) -> object:
    """A problem's `requestId` (a call's `elapsedMs`) is the request's own: everything else must be equal."""
    return {k: v for k, v in body.items() if k not in PER_REQUEST} if isinstance(body, dict) else body


@contextmanager
def solved_by_fastapi(app: FastAPI) -> Iterator[None]:
    """Meanwhile every route answers through FastAPI's solver (as it would without `app.routers.direct`)."""
    routes = [route for route in app.routes if isinstance(route, DocumentRoute)]
    direct = [route.app for route in routes]
    for route in routes:
        route.app = request_response(route.solved_handler())
    try:
        yield
    finally:
        for route, handler in zip(routes, direct, strict=True):
            route.app = handler


async def test_direct_and_solved_answer_the_same(app: FastAPI, client: httpx.AsyncClient, world: World) -> None:
    staff = world["staff_a"].headers
    created = await client.post(BASE, json={"name": "direct_probe", "tags": ["x"]}, headers=staff)
    assert created.status_code == 201, created.text
    plugin_id = created.json()["id"]
    requests = [
        (f"{BASE}{plugin_id}/", staff),
        (f"{BASE}{plugin_id}/prompt/", staff),
        (f"{BASE}{plugin_id}/selector/", staff),
        (f"{BASE}{plugin_id}/tool/?format=anthropic", staff),
        (f"{BASE}{plugin_id}/tool/?format=nonsense", staff),
        (f"{BASE}{plugin_id}/", world["staff_b"].headers),  # another tenant: 404
        (f"{BASE}{plugin_id}/", {"Authorization": "Token not-a-key"}),  # 401
        (f"{BASE}{plugin_id}/", {}),  # no key: 401
        (f"{BASE}not-an-id/", staff),
        (f"{BASE}?limit=1&tag=x", staff),
        (f"{BASE}?limit=0", staff),  # 422 from the query's own rules
        (f"{BASE}?limit=abc&offset=-1", staff),
        (f"{BASE}?pluginClass=nonsense", staff),
    ]
    direct = [await client.get(path, headers=headers) for path, headers in requests]
    with solved_by_fastapi(app):
        solved = [await client.get(path, headers=headers) for path, headers in requests]
    _assert_same([path for path, _ in requests], direct, solved)
    statuses = {response.status_code for response in direct}
    assert {200, 401, 404, 422} <= statuses  # the comparison covered answers and refusals


def _assert_same(labels: list[str], direct: list[httpx.Response], solved: list[httpx.Response]) -> None:
    for label, ours, theirs in zip(labels, direct, solved, strict=True):
        assert (ours.status_code, ours.headers.get("content-type")) == (
            theirs.status_code,
            theirs.headers.get("content-type"),
        ), label
        assert _without_request_id(ours.json()) == _without_request_id(theirs.json()), label


JSON_TYPE = {"Content-Type": "application/json"}


async def test_direct_and_solved_read_json_bodies_the_same(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    staff = world["staff_a"].headers
    body = {"name": "direct_call", "selector": {"directive": "always"}, "data": {"staticData": {"answer": [1, 2]}}}
    created = await client.post(BASE, json=body, headers=staff)
    assert created.status_code == 201, created.text
    call = f"{BASE}{created.json()['id']}/call/"
    good = b'{"arguments": {"inquiry_type": "answer"}}'
    nested = b"[" * 5000 + b"]" * 5000
    # (path, headers, body): answers, and every way a body can be refused, in the order FastAPI checks.
    requests: list[tuple[str, dict[str, str], bytes]] = [
        (call, {**staff, **JSON_TYPE}, good),
        (call, {**staff, "Content-Type": "application/json; charset=utf-8"}, good),
        (call, {**staff, "Content-Type": "application/vnd.smarter+json"}, good),
        (call, {**staff, **JSON_TYPE}, b'{"name": "direct_call", "arguments": "{\\"inquiry_type\\": \\"answer\\"}"}'),
        (call, {**staff, **JSON_TYPE}, b'{"name": "someone_else", "arguments": {}}'),  # the route's own 422
        (call, {**staff, **JSON_TYPE}, b'{"arguments": {"inquiry_type": "nothing"}}'),
        (call, {**staff, **JSON_TYPE}, b'{"arguments": 5, "name": [1]}'),  # invalid fields
        (call, {**staff, **JSON_TYPE}, b"[1, 2]"),  # not an object
        (call, {**staff, **JSON_TYPE}, b"null"),
        (call, {**staff, **JSON_TYPE}, b""),  # missing body
        (call, {**staff, **JSON_TYPE}, b'{"arguments":'),  # bad JSON: 400
        (call, {**staff, **JSON_TYPE}, b"\xff\xfe"),  # not text
        (call, {**staff, **JSON_TYPE}, nested),  # deeper than `app.documents` allows
        (call, {**staff, "Content-Type": "text/plain"}, good),  # wrong content type: bytes, refused
        (call, {**staff, "Content-Type": "application/xml"}, good),
        (call, staff, good),  # no content type
        (call, JSON_TYPE, b'{"arguments":'),  # the body is read before the key is checked
        (call, JSON_TYPE, good),  # no key: 401
        (call, {**world["staff_b"].headers, **JSON_TYPE}, good),  # another tenant: 404
        (call, {**world["staff_b"].headers, **JSON_TYPE}, b"[]"),  # the body is validated after the key
        (f"{BASE}not-an-id/call/", {**staff, **JSON_TYPE}, good),
        (f"{BASE}selection/", {**staff, **JSON_TYPE}, b'{"prompt": "answer", "maxTools": 3}'),
        (f"{BASE}selection/", {**staff, **JSON_TYPE}, b'{"prompt": "answer", "maxTools": -1, "format": "x"}'),
        (f"{BASE}selection/", {**staff, **JSON_TYPE}, b'{"prompt": "answer", "unknown": 1}'),
        (f"{BASE}selection/", {**staff, **JSON_TYPE}, b"{}"),
    ]

    async def send() -> list[httpx.Response]:
        return [await client.post(path, headers=headers, content=content) for path, headers, content in requests]

    direct = await send()
    with solved_by_fastapi(app):
        solved = await send()
    _assert_same([f"{path} {headers} {content[:60]!r}" for path, headers, content in requests], direct, solved)
    statuses = {response.status_code for response in direct}
    assert {200, 400, 401, 404, 422} <= statuses
