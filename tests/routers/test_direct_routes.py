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
from fastapi.routing import APIRoute

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


def test_only_body_less_reads_of_plain_parameters_are_direct(app: FastAPI) -> None:
    direct = _direct_routes(app)
    assert "GET /api/v1/plugins/{id}/" in direct
    assert "GET /api/v1/plugins/" in direct
    # Routes with a body, a session or typed path parameters keep FastAPI's solver.
    assert "POST /api/v1/plugins/" not in direct
    assert not any(path.startswith(("PUT ", "PATCH ", "DELETE ")) for path in direct)
    assert not any("/cli/" in path for path in direct)


def _without_request_id(body: object) -> object:
    """A problem's `requestId` is the request's own: everything else must be equal."""
    return {k: v for k, v in body.items() if k != "requestId"} if isinstance(body, dict) else body


@contextmanager
def solved_by_fastapi(app: FastAPI) -> Iterator[None]:
    """While any dependency override is set, every route is solved by FastAPI (the direct handler steps aside)."""

    def unused() -> None:  # a dependency no route has
        return None

    app.dependency_overrides[unused] = unused
    try:
        yield
    finally:
        app.dependency_overrides.pop(unused, None)


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
    for (path, _), ours, theirs in zip(requests, direct, solved, strict=True):
        assert (ours.status_code, ours.headers.get("content-type")) == (
            theirs.status_code,
            theirs.headers.get("content-type"),
        ), path
        assert _without_request_id(ours.json()) == _without_request_id(theirs.json()), path
    statuses = {response.status_code for response in direct}
    assert {200, 401, 404, 422} <= statuses  # the comparison covered answers and refusals
