"""API plugins' tool calls against an HTTP server this module starts on 127.0.0.1 (the tests that reach it set
`SMARTER_CORE_PLUGIN_NETWORKS=any`): every auth method and method, placeholders, the size cap, redirects,
502/504, and the secret never in a response or a log.

The server answers `/echo/...` with what it received; the credentials it saw are reported as digests, so
that not even the echo puts a secret into a response.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from app.runtime import Runtime
from tests.connections.support import API, create, policy, secret
from tests.support import World

PLUGINS = "/api/v1/plugins/"
SECRET_VALUE = "api-secret-" + secrets.token_hex(8)
BIG = b"x" * (1024 * 1024 + 10)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class Handler(BaseHTTPRequestHandler):
    server_version = "test"

    def _send(self, status: int, body: bytes, content_type: str = "application/json", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _answer(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        port = self.server.server_address[1]
        if split.path.startswith("/echo"):
            seen = {
                "method": self.command,
                "path": split.path,
                "query": parse_qs(split.query),
                "body": json.loads(raw) if raw else None,
                "authorization": digest(self.headers.get("Authorization", "")),
                "apiKey": digest(self.headers.get("X-API-Key", "")),
                "trace": self.headers.get("X-Trace"),
            }
            self._send(200, json.dumps(seen).encode())
        elif split.path == "/list":
            self._send(200, json.dumps(list(range(100))).encode())
        elif split.path == "/text":
            self._send(200, "plain words: é".encode("latin-1"), "text/plain; charset=latin-1")
        elif split.path == "/big":
            self._send(200, BIG, "text/plain")
        elif split.path == "/slow":
            time.sleep(3)
            self._send(200, b"{}")
        elif split.path == "/fail":
            self._send(500, b'{"error": "boom"}')
        elif split.path == "/same-host":
            self._send(302, b"", Location="/echo/redirected")
        elif split.path == "/other-host":
            self._send(302, b"", Location=f"http://localhost:{port}/echo/elsewhere")
        else:
            self._send(404, b"{}")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def api_plugin(client: httpx.AsyncClient, world: World, name: str, connection: str, **data: Any) -> int:
    body = {
        "name": name,
        "pluginClass": "api",
        "connection": connection,
        "apiData": {"endpoint": "/echo", "method": "GET", **data},
    }
    response = await client.post(PLUGINS, json=body, headers=world["staff_a"].headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def call(client: httpx.AsyncClient, world: World, plugin_id: int, **arguments: Any) -> httpx.Response:
    response = await client.post(
        f"{PLUGINS}{plugin_id}/call/", json={"arguments": arguments}, headers=world["regular_a"].headers
    )
    assert SECRET_VALUE not in response.text
    assert base64.b64encode(f"robot:{SECRET_VALUE}".encode()).decode() not in response.text
    return response


def result(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["result"]


async def connection(
    client: httpx.AsyncClient, world: World, upstream: str, name: str, auth: str = "none", *, seconds: int = 5
) -> str:
    headers = world["staff_a"].headers
    body: dict[str, Any] = {"name": name, "baseUrl": upstream, "authMethod": auth, "timeout": seconds}
    if auth != "none":
        await secret(client, headers, f"{name}_key", SECRET_VALUE)
        body["apiKey"] = f"{name}_key"
    if auth == "basic":
        body["username"] = "robot"
    await create(client, API, headers, **body)
    return name


PARAMETERS = [
    {"name": "city", "type": "string", "required": True},
    {"name": "days", "type": "integer", "default": 3},
    {"name": "metric", "type": "boolean"},
]


@pytest.mark.parametrize(
    ("auth", "authorization", "api_key"),
    [
        ("none", "", ""),
        ("basic", "Basic " + base64.b64encode(f"robot:{SECRET_VALUE}".encode()).decode(), ""),
        ("token", f"Bearer {SECRET_VALUE}", ""),
        ("api_key", "", SECRET_VALUE),
    ],
)
async def test_every_auth_method(
    client: httpx.AsyncClient,
    world: World,
    runtime: Runtime,
    upstream: str,
    auth: str,
    authorization: str,
    api_key: str,
) -> None:
    name = await connection(client, world, upstream, f"conn_{auth}", auth)
    with policy(runtime, "any"):
        plugin_id = await api_plugin(client, world, "echo", name)
        seen = result(await call(client, world, plugin_id))
    assert seen["authorization"] == digest(authorization)
    assert seen["apiKey"] == digest(api_key)


async def test_get_placeholders_url_params_headers_and_query(
    client: httpx.AsyncClient, world: World, runtime: Runtime, upstream: str
) -> None:
    name = await connection(client, world, upstream, "weather")
    with policy(runtime, "any"):
        plugin_id = await api_plugin(
            client,
            world,
            "weather",
            name,
            endpoint="/echo/{city}/forecast",
            urlParams=[{"key": "units", "value": "si"}, {"key": "for", "value": "{city}"}],
            headers=[{"name": "X-Trace", "value": "t-{city}"}],
            parameters=PARAMETERS,
            testValues=[{"name": "city", "value": "Porto"}],
        )
        # Headers are ASCII: an argument that is not is refused (422) before anything is sent.
        assert (await call(client, world, plugin_id, city="São Paulo")).status_code == 422
        untraced = await api_plugin(
            client,
            world,
            "untraced",
            name,
            endpoint="/echo/{city}/forecast",
            urlParams=[{"key": "units", "value": "si"}, {"key": "for", "value": "{city}"}],
            parameters=PARAMETERS,
        )
        seen = result(await call(client, world, untraced, city="São Paulo/../admin?x=1#y", metric=True))
        assert seen["method"] == "GET"
        # Path-escaped: the argument stays one segment (no traversal, no query, no fragment).
        assert seen["path"] == "/echo/S%C3%A3o%20Paulo%2F..%2Fadmin%3Fx%3D1%23y/forecast"
        assert seen["query"] == {
            "units": ["si"],
            "for": ["São Paulo/../admin?x=1#y"],
            "days": ["3"],  # the declared default
            "metric": ["true"],
        }
        assert seen["trace"] is None  # no such header was declared for this plugin
        traced = result(await call(client, world, plugin_id, city="Porto/x"))
        assert traced["trace"] == "t-Porto/x"
        dots = result(await call(client, world, untraced, city=".."))
        assert dots["path"] == "/echo/%2E%2E/forecast"
        tested = await client.post(f"{PLUGINS}{plugin_id}/test/", headers=world["staff_a"].headers)
        assert result(tested)["path"] == "/echo/Porto/forecast"
        # A header value with a line break is refused before anything is sent.
        assert (await call(client, world, plugin_id, city="a\r\nX-Injected: 1")).status_code == 422


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_methods_and_json_body(
    client: httpx.AsyncClient, world: World, runtime: Runtime, upstream: str, method: str
) -> None:
    name = await connection(client, world, upstream, "writer", "token")
    with policy(runtime, "any"):
        templated = await api_plugin(
            client,
            world,
            "templated",
            name,
            endpoint="/echo/orders",
            method=method,
            body={"city": "{city}", "days": "{days}", "note": "for {city}", "nested": [{"m": "{metric}"}]},
            parameters=PARAMETERS,
        )
        seen = result(await call(client, world, templated, city='Lisbon "quoted"', metric=False))
        assert seen["method"] == method
        assert seen["body"] == {
            "city": 'Lisbon "quoted"',
            "days": 3,
            "note": 'for Lisbon "quoted"',
            "nested": [{"m": False}],
        }
        assert seen["query"] == {}
        plain = await api_plugin(client, world, "plain", name, endpoint="/echo", method=method, parameters=PARAMETERS)
        seen = result(await call(client, world, plain, city="Faro"))
        expected = None if method == "DELETE" else {"city": "Faro", "days": 3}
        assert seen["body"] == expected


async def test_answers_limits_redirects_and_failures(
    client: httpx.AsyncClient, world: World, runtime: Runtime, upstream: str
) -> None:
    name = await connection(client, world, upstream, "answers", "api_key", seconds=1)
    with policy(runtime, "any"):
        listing = await api_plugin(client, world, "listing", name, endpoint="/list", limit=10)
        response = await call(client, world, listing)
        assert result(response) == list(range(10))
        assert response.json()["truncated"] is True
        text = await api_plugin(client, world, "text", name, endpoint="/text")
        assert result(await call(client, world, text)) == "plain words: é"
        same = await api_plugin(client, world, "same", name, endpoint="/same-host")
        assert result(await call(client, world, same))["path"] == "/echo/redirected"

        cases = {"/big": 502, "/fail": 502, "/other-host": 502, "/missing": 502, "/slow": 504}
        for index, (endpoint, status) in enumerate(cases.items()):
            plugin_id = await api_plugin(client, world, f"case_{index}", name, endpoint=endpoint)
            response = await call(client, world, plugin_id)
            assert response.status_code == status, (endpoint, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
        other = await api_plugin(client, world, "other", name, endpoint="/other-host")
        assert "another host" in (await call(client, world, other)).json()["detail"]

    # The default policy refuses 127.0.0.1 before any request is sent.
    refused = await call(client, world, listing)
    assert refused.status_code == 502
    assert "SMARTER_CORE_PLUGIN_NETWORKS" in refused.text or "network policy" in refused.text


async def test_unreachable_api_is_502(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    name = await connection(client, world, "http://127.0.0.1:9", "closed_port", "token")
    with policy(runtime, "any"):
        plugin_id = await api_plugin(client, world, "closed", name)
        response = await call(client, world, plugin_id)
    assert response.status_code == 502, response.text
