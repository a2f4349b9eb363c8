"""schemathesis over every operation of `/openapi.json`, in-process, as a regular user, a staff user and a superuser.

Every response must pass: no 5xx (`not_a_server_error`), only documented statuses (`status_code_conformance`),
documented content types (`content_type_conformance`), bodies matching the documented schema
(`response_schema_conformance`). Generation is derandomized (the same cases on every run) and budgeted for CI.

How it runs: the schema is the document the real app factory builds (what `/openapi.json` serves; a test
below checks they are equal). Each generated case is serialized by schemathesis and sent through httpx's ASGI
transport to the session's app (the same app, database and caches the rest of the suite uses), on the
session event loop; the response is validated by schemathesis. The principals authenticate with the real keys
of the seeded world, so every route is exercised past its 401.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig
from sqlalchemy import select

from app.identifiers import hashed_id
from app.main import create_app
from app.models import ApiKey
from app.runtime import Runtime
from tests import support
from tests.support import World

# Building the app opens no connection: the URL is never used.
DOCUMENT = create_app(support.test_settings("sqlite+aiosqlite:///:memory:")).openapi()

CONFIG = SchemathesisConfig.from_dict(
    {
        # The document's examples; the coverage phase (deterministic boundary and type-confusion cases of every
        # parameter and body field, cheap to generate); then random fuzzing, in positive and negative mode.
        "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True}, "fuzzing": {"enabled": True}},
        # The principals' real `Authorization` headers are sent instead of generated ones.
        "generation": {"mode": "all", "with-security-parameters": False},
    }
)
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)

# Least privileged first: see `fuzz_world`.
PRINCIPALS = ("regular_a", "staff_a", "superuser")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Random cases of the fuzzing phase per operation and principal (fewer when an operation has fewer distinct
# cases); the examples and coverage phases add their own fixed sets. The CI budget: about 2 minutes per backend
# on a 2-core machine (207 items, about 11,000 requests, 1,600 of them 2xx). Raise it locally for a deeper run.
MAX_EXAMPLES = 12

# Values that exist in the seeded world, swapped in for part of the generated ones so that cases get past the
# 404: every table's ids start at 1 in each fresh world, and these are its kinds and names.
IDS = ["1", "2", "3", "4", hashed_id(1), hashed_id(2), hashed_id(3)]
KINDS = [
    "Account",
    "User",
    "Plugin",
    "SmarterAuthToken",
    "plugins",
    "smarter_auth_token",
    "SqlConnection",
    "api_connections",
    "Secret",
]
PLUGINS = {"superuser": "p_platform", "staff_a": "p_staff_a", "regular_a": "p_regular_a", "staff_b": "p_staff_b"}
# A connection of each kind per owner (loopback hosts: `test/` is refused by the network policy at once).
CONNECTIONS = {
    "sql": {"dbEngine": "postgresql", "hostname": "127.0.0.1", "database": "x", "timeout": 1},
    "api": {"baseUrl": "http://127.0.0.1:9/", "timeout": 1},
}
SECRETS = {"superuser": "s_platform", "staff_a": "s_staff_a", "regular_a": "s_regular_a"}
NAMES = ["tenant_a", "admin", "staff_a", "regular_a", "staff_a_key", *PLUGINS.values(), "c_staff_a", *SECRETS.values()]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@schema.hook("flatmap_path_parameters")
def known_path_parameters(context: Any, parameters: dict[str, Any] | None) -> st.SearchStrategy[dict[str, Any] | None]:
    """Keep the generated `id` / `kind`, or use one that exists in the world."""
    if not parameters:
        return st.just(parameters)
    options: list[st.SearchStrategy[dict[str, Any] | None]] = [st.just(parameters)]
    if "id" in parameters:
        options.append(st.sampled_from(IDS).map(lambda value: {**parameters, "id": value}))
    if "kind" in parameters:
        options.append(st.sampled_from(KINDS).map(lambda value: {**parameters, "kind": value}))
    return st.one_of(options)


@schema.hook("flatmap_query")
def known_names(context: Any, query: dict[str, Any] | None) -> st.SearchStrategy[dict[str, Any] | None]:
    """The manifest commands' `?name=`: keep the generated one, or name an object of the world."""
    operation = context.operation
    if not operation.path.startswith("/api/v1/cli/") or "name" not in {p.name for p in operation.iter_parameters()}:
        return st.just(query)
    return st.one_of(st.just(query), st.sampled_from(NAMES).map(lambda value: {**(query or {}), "name": value}))


# --- the world ---------------------------------------------------------------------------------------------


@dataclass
class Seeded:
    """The world the fuzzed requests run against, kept from one test item to the next while it is intact."""

    world: World | None = None
    dirty: bool = False


SEEDED = Seeded()


async def seed(app: FastAPI) -> World:
    """Empty tables, the seeded world (real users, real keys) and a plugin per owner, created through the API."""
    runtime: Runtime = app.state.runtime
    await support.truncate_all(runtime)
    world = await support.seed_world(runtime)
    async with support.client_for(app) as http:
        for actor, name in PLUGINS.items():
            body = {"name": name, "selector": {"directive": "search_terms", "searchTerms": ["weather"]}}
            response = await http.post("/api/v1/plugins/", json=body, headers=world[actor].headers)
            assert response.status_code == 201, response.text
            for kind, fields in CONNECTIONS.items():
                connection = {"name": f"c_{actor}", **fields}
                response = await http.post(
                    f"/api/v1/connections/{kind}/", json=connection, headers=world[actor].headers
                )
                assert response.status_code == 201, response.text
        for actor, name in SECRETS.items():
            body = {"name": name, "value": f"fuzz-value-of-{actor}"}
            response = await http.post("/api/v1/secrets/", json=body, headers=world[actor].headers)
            assert response.status_code == 201, response.text
    return world


async def intact(app: FastAPI, world: World | None) -> bool:
    """Whether the database still holds this world (another test may have emptied and reseeded it)."""
    if world is None:
        return False
    runtime: Runtime = app.state.runtime
    key = world["superuser"].key_row
    async with runtime.sessionmaker() as session:
        digest = await session.scalar(select(ApiKey.digest).where(ApiKey.id == key.id))
    return digest == key.digest


@pytest.fixture
async def fuzz_world(live_app: FastAPI, principal: str, request: pytest.FixtureRequest) -> World:
    """A fresh world for each operation, shared by its principals; none after an operation that only reads.

    Seeding costs more than fuzzing an operation, so it is done once per operation (not per operation and
    principal), and not after a read-only operation (reads never write). Principals run least privileged first:
    what one does to the world (log out, deactivate a key or a user) reaches only itself or less privileged
    users, whose turn is over.
    """
    if (principal == PRINCIPALS[0] and SEEDED.dirty) or not await intact(live_app, SEEDED.world):
        SEEDED.world = await seed(live_app)
        SEEDED.dirty = False
    label: str = getattr(request.node, "operation_label", "")
    SEEDED.dirty |= label.split(" ", 1)[0] not in SAFE_METHODS
    return SEEDED.world


@pytest.fixture
async def session_loop() -> asyncio.AbstractEventLoop:
    """The loop the app's engine, pool and caches live on: pytest-asyncio's session loop."""
    return asyncio.get_running_loop()


async def _send(app: FastAPI, prepared: requests.PreparedRequest) -> httpx.Response:
    async with support.client_for(app) as http:
        return await http.request(
            prepared.method or "GET", prepared.url or "/", headers=dict(prepared.headers), content=prepared.body
        )


# --- the fuzz ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("principal", PRINCIPALS)
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,  # no example database: every run replays exactly the derandomized cases
    deadline=None,
    # No shrinking: the API is stateful (a failing case may not fail again on replay), and the report names
    # the case that failed.
    phases=[Phase.explicit, Phase.generate],
    # The world is a function-scoped fixture on purpose: it is shared by the cases of one operation.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_openapi_fuzz(
    case: schemathesis.Case,
    principal: str,
    fuzz_world: World,
    live_app: FastAPI,
    session_loop: asyncio.AbstractEventLoop,
) -> None:
    headers = fuzz_world[principal].headers
    kwargs = case.as_transport_kwargs(base_url="http://test", headers=headers)
    # The request exactly as schemathesis's own (requests-based) transport would send it.
    prepared = requests.Request(
        method=kwargs["method"],
        url=kwargs["url"],
        headers=kwargs["headers"],
        params=kwargs.get("params"),
        cookies=kwargs.get("cookies"),
        data=kwargs.get("data"),
        json=kwargs.get("json"),
        files=kwargs.get("files"),
    ).prepare()
    # Hypothesis drives this test synchronously; the session loop is idle while a test body runs, so each
    # request runs to completion on the loop the app's engine belongs to.
    response = session_loop.run_until_complete(_send(live_app, prepared))
    case.validate_response(response, checks=CHECKS, headers=headers, transport_kwargs=kwargs)


async def test_the_fuzzed_document_is_the_served_one(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == DOCUMENT
    # Every operation is fuzzed: the document has no operation schemathesis cannot load.
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(item) for item in DOCUMENT["paths"].values())


# --- regressions: what the document got wrong ----------------------------------------------------------------

PROBLEM_CONTENT = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
JOURNAL_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/JournalErrorResponse"}}}
GUARDED_METHODS = ("post", "put", "patch", "delete")


def schemas_of(content: dict[str, Any]) -> dict[str, Any]:
    """A response's media types and their schemas (each also has its status's example: tests/docs)."""
    return {media: {"schema": value["schema"]} for media, value in content.items()}


def test_every_error_response_is_documented_as_it_is_sent() -> None:
    """FastAPI documented a 422 `HTTPValidationError` on 9 operations (those with parameters and no declared 422),
    a shape this service never sends, and every problem response as `application/json` too."""
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    expected = JOURNAL_CONTENT if path.startswith("/api/v1/cli/") else PROBLEM_CONTENT
                    assert schemas_of(response["content"]) == expected, (method, path, status)
    assert "HTTPValidationError" not in DOCUMENT["components"]["schemas"]
    assert "ValidationError" not in DOCUMENT["components"]["schemas"]
    unprocessable = DOCUMENT["paths"]["/api/v1/accounts/users/{id}/"]["get"]["responses"]["422"]
    assert unprocessable["description"] == "Unprocessable Entity"
    assert schemas_of(unprocessable["content"]) == PROBLEM_CONTENT


def test_every_method_the_body_guard_limits_declares_413() -> None:
    """The guard answers 413 before routing; 8 operations (deletes, login/logout) did not declare it."""
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            assert ("413" in operation["responses"]) == (method in GUARDED_METHODS), (method, path)


async def test_an_oversized_body_on_a_delete_gets_the_documented_413(client: httpx.AsyncClient, world: World) -> None:
    target = world["regular_a"].user.id
    response = await client.request(
        "DELETE",
        f"/api/v1/accounts/users/{target}/",
        content=b"x" * (1024 * 1024 + 1),
        headers={**world["superuser"].headers, "content-type": "application/octet-stream"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    case = schema["/api/v1/accounts/users/{id}/"]["DELETE"].Case(path_parameters={"id": str(target)})
    case.validate_response(response, checks=CHECKS)
    # Refused before routing: the user is still there.
    still = await client.get(f"/api/v1/accounts/users/{target}/", headers=world["superuser"].headers)
    assert still.status_code == 200
