"""Request ids (kept, generated, echoed in headers and error bodies) and the access record of every request."""

from __future__ import annotations

import json
import logging
import re

import httpx
import pytest

from app.config import Settings
from app.observe import ACCESS_LOGGER, JsonFormatter, log_format, logging_config
from app.runtime import Runtime
from tests import support

GENERATED = re.compile(r"[0-9a-f]{32}")


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == ACCESS_LOGGER]


async def test_a_valid_request_id_is_kept_and_echoed(client: httpx.AsyncClient, runtime: Runtime) -> None:
    world = await support.seed_world(runtime)
    headers = {**world["superuser"].headers, "X-Request-ID": "trace-42/abc"}
    response = await client.get("/api/v1/plugins/", headers=headers)
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "trace-42/abc"


@pytest.mark.parametrize("sent", ["", "has space", "x" * 129, "caf\u00e9", "tab\there"])
async def test_an_invalid_request_id_is_replaced(client: httpx.AsyncClient, sent: str) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": sent.encode("utf-8")})  # type: ignore[dict-item]
    assert response.status_code == 200
    assert GENERATED.fullmatch(response.headers["x-request-id"])


async def test_every_error_body_carries_the_request_id(client: httpx.AsyncClient, runtime: Runtime) -> None:
    world = await support.seed_world(runtime)
    rid = {"X-Request-ID": "req-1"}
    cases = [
        await client.get("/api/v1/plugins/", headers=rid),  # 401 from the route
        await client.get("/api/v1/plugins/", headers={**rid, "Authorization": "Token short"}),  # refused early
        await client.get("/api/v1/plugins/999999/", headers={**rid, **world["superuser"].headers}),  # 404
        await client.get("/nowhere", headers=rid),  # no route
        await client.delete("/api/v1/plugins/", headers={**rid, **world["superuser"].headers}),  # 405
    ]
    for response in cases:
        assert response.status_code >= 400
        assert response.headers["x-request-id"] == "req-1"
        assert response.json()["requestId"] == "req-1", response.text
    journal = await client.get("/api/v1/cli/describe/NoSuchKind/", headers={**rid, **world["superuser"].headers})
    assert journal.status_code >= 400
    assert journal.json()["error"]["requestId"] == "req-1"
    generated = await client.get("/api/v1/plugins/")
    assert generated.json()["requestId"] == generated.headers["x-request-id"]


async def test_allow_on_a_405_lists_every_method_of_the_path(client: httpx.AsyncClient, runtime: Runtime) -> None:
    world = await support.seed_world(runtime)
    response = await client.put("/api/v1/plugins/", headers=world["superuser"].headers)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    response = await client.post("/api/v1/plugins/1/", headers=world["superuser"].headers)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, PATCH, DELETE"


async def test_one_access_record_per_request_with_its_principal(
    client: httpx.AsyncClient, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    world = await support.seed_world(runtime)
    admin = world["superuser"]
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    response = await client.get("/api/v1/plugins/", headers={**admin.headers, "X-Request-ID": "one"})
    assert response.status_code == 200
    [record] = [r for r in access_records(caplog) if r.fields["request_id"] == "one"]  # type: ignore[attr-defined]
    fields = record.fields  # type: ignore[attr-defined]
    assert fields["method"] == "GET"
    assert fields["route"] == "/api/v1/plugins/"
    assert fields["path"] == "/api/v1/plugins/"
    assert fields["status"] == 200
    assert fields["duration_ms"] >= 0
    assert (fields["user_id"], fields["key_id"]) == (admin.user.id, admin.key_row.id)
    assert admin.key not in record.getMessage()
    caplog.clear()
    await client.get("/api/v1/plugins/42/", headers=admin.headers)
    [record] = access_records(caplog)
    assert record.fields["route"] == "/api/v1/plugins/{id}/"  # type: ignore[attr-defined]
    assert record.fields["status"] == 404  # type: ignore[attr-defined]


def test_json_lines_carry_time_and_fields() -> None:
    record = logging.LogRecord(ACCESS_LOGGER, logging.INFO, __file__, 1, "GET / 200", (), None)
    record.fields = {"request_id": "abc", "status": 200}
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "GET / 200"
    assert line["request_id"] == "abc"
    assert line["status"] == 200
    assert line["level"] == "INFO"
    assert line["time"].endswith("+00:00")


def test_log_format_is_text_on_a_terminal_json_otherwise(database_url: str) -> None:
    # pytest captures stderr: not a terminal.
    assert log_format(Settings(database_url=database_url)) == "json"
    assert log_format(Settings(database_url=database_url, log_format="text")) == "text"
    config = logging_config(Settings(database_url=database_url, log_format="json"), access_log=False)
    assert config["formatters"]["main"] == {"()": "app.observe.JsonFormatter"}
    assert config["loggers"][ACCESS_LOGGER]["level"] == "CRITICAL"
    assert config["loggers"]["uvicorn.access"]["level"] == "CRITICAL"  # ours replaces uvicorn's


async def test_a_key_in_a_url_or_request_id_is_not_logged(
    client: httpx.AsyncClient, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that puts a key where it does not belong (a path, a request id) does not find it in the logs."""
    world = await support.seed_world(runtime)
    admin = world["superuser"]
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    response = await client.get(f"/api/v1/plugins/{admin.key}/", headers={**admin.headers, "X-Request-ID": admin.key})
    assert response.status_code == 404
    [record] = access_records(caplog)
    fields = record.fields  # type: ignore[attr-defined]
    assert fields["path"] == "/api/v1/plugins/[redacted]/"
    assert fields["request_id"] == "[redacted]"
    assert admin.key not in record.getMessage()
