"""Helpers of the connection tests: secrets and connections through REST, a local HTTP server, the policy."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from app.network import NetworkPolicy
from app.runtime import Runtime

SQL = "/api/v1/connections/sql/"
API = "/api/v1/connections/api/"
SECRETS = "/api/v1/secrets/"
SECRET_VALUE = "s3cr3t-value-never-shown"


async def secret(client: httpx.AsyncClient, headers: dict[str, str], name: str, value: str = SECRET_VALUE) -> int:
    response = await client.post(SECRETS, headers=headers, json={"name": name, "value": value})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def create(client: httpx.AsyncClient, base: str, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post(base, headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def mariadb_available() -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", 3306)) == 0


@contextmanager
def policy(runtime: Runtime, value: str) -> Iterator[None]:
    """The runtime's network policy set as `SMARTER_CORE_PLUGIN_NETWORKS=<value>` would, for one test."""
    before = runtime.pools.policy
    runtime.pools.policy = NetworkPolicy.parse(value)
    try:
        yield
    finally:
        runtime.pools.policy = before


@dataclass
class Seen:
    """What a test HTTP server was asked: (method, path, headers) per request."""

    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)


@contextmanager
def http_server(
    host: str = "127.0.0.1", *, routes: dict[str, tuple[int, dict[str, str], bytes]] | None = None
) -> Iterator[tuple[str, Seen]]:
    """A real HTTP server on `host` (a free port): `routes` maps a path to (status, headers, body); other
    paths answer 200 with `{"ok": true}`, or 401 when `/private` is asked without `Bearer token-value`."""
    seen = Seen()
    table = routes or {}

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.requests.append((self.command, self.path, dict(self.headers.items())))
            status, headers, body = table.get(self.path, (200, {"Content-Type": "application/json"}, b'{"ok": true}'))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = do_POST = _answer

        def log_message(self, *args: Any) -> None:  # quiet
            pass

    class QuietServer(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a client that stops reading (the size cap) is expected here, not a failure to print

    server = QuietServer((host, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
