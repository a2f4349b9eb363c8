"""The server as operators run it: JSON access lines in place of uvicorn's, and Swagger UI working offline in a
real browser (headless Chromium from Debian's packages, installed here when missing)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from tests import support
from tests.live import live_server

pytestmark = pytest.mark.slow

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def empty_database() -> Iterator[str]:
    url = asyncio.run(support.fresh_database_url())
    try:
        yield url
    finally:
        if url.startswith("postgresql"):
            asyncio.run(support.drop_postgres_database(url))


def json_lines(text: str) -> list[dict[str, object]]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_the_server_writes_one_json_access_line_per_request(empty_database: str) -> None:
    settings = {"SMARTER_CORE_LOG_FORMAT": "json", "SMARTER_CORE_LOG_LEVEL": "info"}
    with live_server(empty_database, access_log=True, **settings) as server:
        headers = {"Authorization": f"Token {server.admin_key}", "X-Request-ID": "live-1"}
        response = httpx.get(f"{server.base_url}/api/v1/cli/whoami/", headers=headers, timeout=10)
        assert response.status_code == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            mine = [line for line in json_lines(server.log()) if line.get("request_id") == "live-1"]
            if mine:
                break
            time.sleep(0.1)
        log = server.log()
    [record] = mine
    assert record["logger"] == "app.access"
    assert record["route"] == "/api/v1/cli/whoami/"
    assert record["status"] == 200
    assert record["user_id"] == 1
    assert isinstance(record["key_id"], int)
    assert isinstance(record["duration_ms"], float)
    assert str(record["time"]).endswith("+00:00")
    assert all(line["logger"] != "uvicorn.access" for line in json_lines(log))  # ours replaced uvicorn's
    assert server.admin_key not in log


def chromium() -> str | None:
    """Debian's Chromium, installed with apt-get if missing (idempotent: nothing to do once installed)."""
    found = shutil.which("chromium")
    if found or os.environ.get("SMARTER_CORE_NO_BROWSER_INSTALL"):
        return found
    if not shutil.which("apt-get") or os.geteuid() != 0:
        return None
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "timeout": 900}
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update"], check=False, env=environment, **quiet)  # type: ignore[call-overload]
    subprocess.run(["apt-get", "install", "-y", "chromium"], check=False, env=environment, **quiet)  # type: ignore[call-overload]
    return shutil.which("chromium")


def test_swagger_ui_works_offline_authorizes_and_executes(empty_database: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency")
    executable = chromium()
    if executable is None:
        pytest.skip("Chromium is not installed and cannot be installed here (needs root and apt-get)")
    with live_server(empty_database) as server, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            elsewhere: list[str] = []
            page.on(
                "request",
                lambda request: None if request.url.startswith(server.base_url) else elsewhere.append(request.url),
            )
            page.goto(f"{server.base_url}/docs")
            page.locator(".swagger-ui .info .title").wait_for(timeout=30_000)
            page.locator("button.authorize").first.click()
            token_form = page.locator(".modal-ux .auth-container", has_text="apiKey").first  # not HTTP Basic
            token_form.locator("input").first.fill(f"Token {server.admin_key}")
            token_form.locator("button.authorize").first.click()
            page.locator(".modal-ux button.btn-done").first.click()
            operation = page.locator(".opblock-get", has=page.locator("[data-path='/api/v1/cli/whoami/']")).first
            operation.locator(".opblock-summary").first.click()
            operation.locator("button.try-out__btn").click()
            operation.locator("button.execute").click()
            status = operation.locator(".live-responses-table tbody .response-col_status").first
            status.wait_for(timeout=30_000)
            curl = operation.locator(".curl-command").first.inner_text()
            assert status.inner_text().strip() == "200", curl
            body = operation.locator(".live-responses-table tbody .response-col_description").first.inner_text()
            assert '"username": "admin"' in body
            assert elsewhere == [], "the docs loaded something from another host"
        finally:
            browser.close()


@pytest.mark.postgres_only
def test_metrics_add_up_every_worker(empty_database: str) -> None:
    """Two workers: whichever answers /metrics reports the requests both served (prometheus-client's
    multiprocess mode, set up by `serve`)."""
    with live_server(empty_database, SMARTER_CORE_WORKERS="2") as server:
        headers = {"Authorization": f"Token {server.admin_key}"}
        route = 'route="/api/v1/cli/whoami/"'
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as http:
            for _ in range(40):  # new connections: the kernel spreads them over both workers
                with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as single:
                    assert single.get("/api/v1/cli/whoami/").status_code == 200

            def served() -> float:
                text = http.get("/metrics").text
                [line] = [
                    line
                    for line in text.splitlines()
                    if line.startswith("smarter_core_http_requests_total{") and route in line and 'status="200"' in line
                ]
                return float(line.rsplit(" ", 1)[1])

            # A request is counted once its response has gone out: the last one may still be counting when a
            # busy machine lets the client ask first. Wait for it, then every read agrees.
            deadline = time.monotonic() + 5
            while served() < 40.0 and time.monotonic() < deadline:
                time.sleep(0.05)
            for _ in range(4):
                assert served() == 40.0
