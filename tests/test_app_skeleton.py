"""The app's skeleton: probes, documentation, error rendering, body limit and path spellings."""

from __future__ import annotations

import gc
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app import db
from app.config import Settings
from app.main import create_app
from app.runtime import Runtime
from app.services import keys
from tests import support
from tests.support import World, auth, backend, statements

PROBLEM_JSON = "application/problem+json"
MIB = 1024 * 1024
SECRET = "hunter2-Sup3r-S3cret-value"


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    assert body["type"].startswith("urn:smarter-core:problem:")
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert "Traceback" not in response.text
    return body


def assert_journal_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["api"] == "smarter.sh/v1"
    assert set(body["metadata"]) >= {"command", "thing"}
    assert body["error"]["status"] == status
    assert body["error"]["errorClass"]
    assert body["error"]["description"]
    assert "Traceback" not in response.text
    return body


# --- probes ----------------------------------------------------------------------------------------


async def test_healthz_never_touches_the_database(client: httpx.AsyncClient, runtime: Runtime) -> None:
    with statements(runtime) as seen:
        for path in ("/healthz", "/healthz/"):
            response = await client.get(path)
            assert response.status_code == 200
            assert response.json() == {"status": "ok"}
    assert seen == []


async def test_telemetry_is_not_a_setting(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """No OpenTelemetry export (README "Operating it": /metrics and the access log): no setting pretends to."""
    monkeypatch.setenv("SMARTER_CORE_TELEMETRY", "true")
    settings = Settings(database_url=database_url)
    assert not hasattr(settings, "telemetry")
    application = create_app(settings)
    async with support.client_for(application) as http:
        assert (await http.get("/healthz")).status_code == 200


async def test_readyz_reports_the_revision(client: httpx.AsyncClient, runtime: Runtime) -> None:
    with statements(runtime) as seen:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "revision": db.migration_head()}
    # It really asks the database (unlike /healthz).
    assert any("alembic_version" in s for s in seen)
    assert (await client.get("/readyz/")).status_code == 200


# --- documentation ---------------------------------------------------------------------------------


async def test_openapi_and_docs_are_served(client: httpx.AsyncClient) -> None:
    spec = await client.get("/openapi.json")
    assert spec.status_code == 200
    document = spec.json()
    assert document["info"]["title"] == "smarter-core"
    assert {"/healthz", "/readyz", "/api/v1/auth/login/"} <= set(document["paths"])
    assert "Problem" in document["components"]["schemas"]
    # Listed by path, not in the order routes are matched (the busiest first): collections before items.
    assert list(document["paths"]) == sorted(document["paths"])
    readyz = document["paths"]["/readyz"]["get"]
    assert "503" in readyz["responses"]
    assert PROBLEM_JSON in readyz["responses"]["503"]["content"]
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in docs.text


async def test_every_authenticated_operation_declares_the_token_scheme(client: httpx.AsyncClient) -> None:
    """Swagger UI's Authorize sends the key only to operations that declare the scheme: all but three."""
    document = (await client.get("/openapi.json")).json()
    assert document["components"]["securitySchemes"]["Token"] == {
        "type": "apiKey",
        "description": "`Token <key>` (or `Bearer <key>`): a 64-character API key or login token.",
        "in": "header",
        "name": "Authorization",
    }
    security = {
        (method, path): operation.get("security")
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    assert security.pop(("get", "/healthz")) is None
    assert security.pop(("get", "/readyz")) is None
    assert security.pop(("post", "/api/v1/auth/login/")) == [{"HTTPBasic": []}]
    assert len(security) > 60
    assert {op: s for op, s in security.items() if s != [{"Token": []}]} == {}
    # What the declaration promises: without the header, an operation that declares it answers 401.
    for method, path in [("get", "/api/v1/plugins/"), ("post", "/api/v1/auth/logout/"), ("get", "/api/v1/cli/whoami/")]:
        assert (await client.request(method, path)).status_code == 401


# --- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/nowhere", "/api/v1/nowhere/", "/api/v1/accounts/x/y/z/w", "/healthz/extra", "/n%C3%B6where/%00"]
)
async def test_unknown_path_is_a_404_problem(client: httpx.AsyncClient, path: str) -> None:
    body = assert_problem(await client.get(path), 404)
    assert body["title"] == "Not Found"


@pytest.mark.parametrize(("method", "path"), [("DELETE", "/healthz"), ("POST", "/readyz"), ("PUT", "/healthz/")])
async def test_wrong_method_is_a_405_problem(client: httpx.AsyncClient, method: str, path: str) -> None:
    response = await client.request(method, path)
    body = assert_problem(response, 405)
    assert body["title"] == "Method Not Allowed"
    assert "GET" in response.headers["allow"]


async def test_wrong_method_on_an_api_route(client: httpx.AsyncClient, world: World) -> None:
    response = await client.put("/api/v1/auth/logout/", headers=world["staff_a"].headers)
    assert_problem(response, 405)
    assert "POST" in response.headers["allow"]


async def test_malformed_json_is_a_400_problem(client: httpx.AsyncClient, world: World) -> None:
    headers = {**world["staff_a"].headers, "content-type": "application/json"}
    for payload in (b'{"name": ', b"{'name': 'x'}", b"not json at all", b'{"name": "a"}}', b"\xff\xfe"):
        response = await client.post("/api/v1/plugins/", content=payload, headers=headers)
        body = assert_problem(response, 400)
        assert "JSON" in body["detail"]
        assert "errors" not in body


async def _chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        chunk = min(size, total - sent)
        sent += chunk
        yield b"x" * chunk


async def test_body_over_1_mib_is_a_413_problem(client: httpx.AsyncClient, world: World) -> None:
    headers = {**world["staff_a"].headers, "content-type": "application/json"}
    huge = b'{"name": "' + b"x" * MIB + b'"}'
    response = await client.post("/api/v1/plugins/", content=huge, headers=headers)
    assert_problem(response, 413)
    # Even unauthenticated and on an unknown path: the limit comes first.
    assert_problem(await client.post("/api/v1/nowhere/", content=huge), 413)


async def test_chunked_body_over_1_mib_is_a_413_problem(client: httpx.AsyncClient, world: World) -> None:
    request = client.build_request(
        "POST",
        "/api/v1/plugins/",
        content=_chunks(MIB + 1),
        headers={**world["staff_a"].headers, "content-type": "application/json"},
    )
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    assert_problem(await client.send(request), 413)


async def test_body_of_exactly_1_mib_is_read(client: httpx.AsyncClient, world: World) -> None:
    headers = {**world["staff_a"].headers, "content-type": "application/json"}
    exact = b"[" + b" " * (MIB - 2) + b"]"
    assert len(exact) == MIB
    # Parsed (a JSON array, not an object) rather than refused for its size.
    assert_problem(await client.post("/api/v1/plugins/", content=exact, headers=headers), 422)
    request = client.build_request("POST", "/api/v1/plugins/", content=_chunks(MIB), headers=headers)
    assert_problem(await client.send(request), 400)  # all "x": read in full, then not JSON


async def test_both_slash_spellings_are_served_without_redirect(client: httpx.AsyncClient, world: World) -> None:
    for path in ("/healthz", "/healthz/", "/readyz", "/readyz/"):
        response = await client.get(path)
        assert response.status_code == 200, path
    headers = world["staff_a"].headers
    for path in ("/api/v1/plugins", "/api/v1/plugins/"):
        response = await client.get(path, headers=headers)
        assert response.status_code == 200, path
        assert isinstance(response.json(), list)
    # Logout without the slash: revokes the credential (204), no 307 to the slashed path.
    response = await client.post("/api/v1/auth/logout", headers=world["staff_b"].headers)
    assert response.status_code == 204
    assert "location" not in response.headers
    assert_problem(await client.post("/api/v1/auth/logout/", headers=world["staff_b"].headers), 401)


async def test_422_names_the_fields_and_never_echoes_values(client: httpx.AsyncClient, world: World) -> None:
    headers = world["staff_a"].headers
    response = await client.post(
        "/api/v1/plugins/",
        json={"name": "fine_name", "password": SECRET, "version": f"not-{SECRET}", "pluginClass": SECRET},
        headers=headers,
    )
    body = assert_problem(response, 422)
    assert SECRET not in response.text
    errors = body["errors"]
    assert isinstance(errors, list)
    assert errors
    for error in errors:
        assert set(error) == {"loc", "msg", "type"}
        assert error["loc"][0] == "body"
    named = {error["loc"][-1] for error in errors}
    assert {"password", "version", "pluginClass"} <= named


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(f"{SECRET}\n", id="control-character"),
        pytest.param(SECRET * 3, id="too-long"),
        pytest.param("(((%%%)))-!!!-<<<>>>", id="no-letters"),
    ],
)
async def test_invalid_names_are_not_echoed(client: httpx.AsyncClient, world: World, name: str) -> None:
    response = await client.post("/api/v1/plugins/", json={"name": name}, headers=world["staff_a"].headers)
    body = assert_problem(response, 422)
    assert name.strip() not in response.text
    assert body["errors"][0]["loc"] == ["body", "name"]


async def test_auth_errors_are_problems_with_a_challenge(client: httpx.AsyncClient, runtime: Runtime) -> None:
    for headers in ({}, {"Authorization": "Token short"}, auth(keys.generate_key())):
        response = await client.post("/api/v1/auth/logout/", headers=headers)
        assert_problem(response, 401)
        assert response.headers["www-authenticate"] == "Token"


# --- the manifest API renders journal envelopes ---------------------------------------------------


async def test_cli_unknown_path_is_a_journal_404(client: httpx.AsyncClient, world: World) -> None:
    for path in ("/api/v1/cli/nowhere/", "/api/v1/cli/nowhere", "/api/v1/cli/get/plugin/extra/"):
        response = await client.post(path, headers=world["staff_a"].headers)
        body = assert_journal_error(response, 404)
        assert "application/problem+json" not in response.headers["content-type"]
        assert body["metadata"]["thing"] == "None"


async def test_cli_huge_body_is_a_journal_413(client: httpx.AsyncClient, world: World) -> None:
    huge = b"x" * (MIB + 1)
    headers = {**world["staff_a"].headers, "content-type": "application/json"}
    body = assert_journal_error(await client.post("/api/v1/cli/apply/", content=huge, headers=headers), 413)
    assert body["metadata"]["command"] == "apply"
    request = client.build_request("POST", "/api/v1/cli/apply", content=_chunks(MIB + 1), headers=headers)
    assert_journal_error(await client.send(request), 413)


async def test_cli_malformed_json_is_a_journal_400(client: httpx.AsyncClient, world: World) -> None:
    headers = {**world["staff_a"].headers, "content-type": "application/json"}
    response = await client.post("/api/v1/cli/apply/", content=b'{"apiVersion": ', headers=headers)
    body = assert_journal_error(response, 400)
    assert body["metadata"]["command"] == "apply"


async def test_cli_unauthenticated_is_a_journal_401(client: httpx.AsyncClient, runtime: Runtime) -> None:
    response = await client.post("/api/v1/cli/whoami/")
    body = assert_journal_error(response, 401)
    assert body["metadata"]["command"] == "whoami"
    assert json.dumps(body).count("stacktrace") == 0


async def test_start_up_objects_are_frozen_only_while_the_app_serves(database_url: str) -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    application = create_app(support.test_settings(database_url))
    async with application.router.lifespan_context(application):
        assert gc.get_freeze_count() > 0  # the app, its routes and models: no longer walked by collections
    assert gc.get_freeze_count() == 0  # a process that builds apps again (this suite) can free them


async def test_the_app_is_a_fastapi_app(app: FastAPI) -> None:
    assert app.router.redirect_slashes is False


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"name": "nul_description", "description": "a\u0000b"}, id="text"),
        pytest.param({"name": "nul_annotation", "annotations": [{"k": "a\u0000b"}]}, id="jsonb"),
    ],
)
async def test_values_the_database_refuses_are_never_a_500(
    client: httpx.AsyncClient, world: World, body: dict[str, Any]
) -> None:
    """PostgreSQL cannot store NUL in text or JSONB (SQLite can): a 422 there, never a 500."""
    response = await client.post("/api/v1/plugins/", json=body, headers=world["staff_a"].headers)
    if backend() == "postgresql":
        assert_problem(response, 422)
    else:
        assert response.status_code in (201, 422), response.text
