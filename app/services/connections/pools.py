"""Outbound connections of SQL and API connections, owned by the Runtime (one `ConnectionPools` per process).

SQL: one pooled async SQLAlchemy engine per connection (asyncpg, aiomysql, aiosqlite), sized by the row's
`pool_size`/`max_overflow`. An engine is keyed by the connection's id, `updated_at` and a digest of the
password: a changed connection or rotated secret gets a new engine and the old one is disposed. Every new
DBAPI connection is opened by `_creator`, which resolves the host, applies the network policy and connects
to the checked address itself.

API: one shared `httpx.AsyncClient` (no redirects of its own, no proxies from the environment); each
request is sent to the checked address of its host (TLS still verified against the host name through
SNI), with the connection's timeout, redirects followed hop by hop with the policy applied to every hop.

The plugin runtime uses `sql_connection` and `api_request`; the `test/` action uses both.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import ssl
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urljoin

import aiomysql
import aiosqlite
import asyncpg
import httpx
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from app.models import ApiConnection, SqlConnection
from app.schemas.connections import DEFAULT_PORTS
from app.services.connections.network import (
    NetworkPolicy,
    NetworkRefused,
    UpstreamFailed,
    UpstreamTimeout,
    checked_address,
)
from app.services.connections.rules import engine_family

# Responses larger than this are refused (the plugin runtime's 1 MiB).
MAX_RESPONSE_BYTES = 1024 * 1024
MAX_REDIRECTS = 5
Redirects = Literal["none", "same_host", "any"]
# Headers that carry the connection's credentials: never sent to another host after a redirect.
_CREDENTIAL_HEADERS = ("authorization", "x-api-key", "proxy-authorization")
_MASK = "********"


@dataclass(frozen=True, slots=True)
class ApiResponse:
    """An API's answer: status, headers, the body (at most `max_bytes`), and the URL that gave it."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    url: str


def _without(message: str, secret: str | None) -> str:
    """A driver's message, with the secret masked should a driver ever echo it."""
    return message.replace(secret, _MASK) if secret else message


def _ssl_context(connection: SqlConnection) -> ssl.SSLContext | None:
    """`useSsl`: with `sslCa`, the chain is verified against it (libpq's verify-ca: the address connected to is
    the checked IP, not the name); without, the link is encrypted only. `sslCert`/`sslKey`: a client certificate."""
    if not connection.use_ssl:
        return None
    context = (
        ssl.create_default_context(cadata=connection.ssl_ca)
        if connection.ssl_ca
        else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    )
    context.check_hostname = False
    if not connection.ssl_ca:
        context.verify_mode = ssl.CERT_NONE
    if connection.ssl_cert:
        # The ssl module loads a client certificate from files only: written for the call, then removed.
        with tempfile.TemporaryDirectory() as directory:
            cert = Path(directory) / "cert.pem"
            cert.write_text(connection.ssl_cert)
            key = None
            if connection.ssl_key:
                key = Path(directory) / "key.pem"
                key.touch(mode=0o600)
                key.write_text(connection.ssl_key)
            context.load_cert_chain(cert, key)
    return context


def _sqlite_path(database: str, own: str | None) -> str:
    """The real path of an existing SQLite file that is not the service's own database."""
    path = os.path.realpath(database)
    if path == own:
        raise NetworkRefused("This is the service's own database: no connection may open it.")
    if not os.path.isfile(path):
        raise UpstreamFailed(f"The SQLite database file {database!r} does not exist.")
    return path


def _password_digest(password: str | None) -> str:
    return hashlib.sha256(password.encode()).hexdigest() if password is not None else ""


@dataclass(slots=True)
class _PooledEngine:
    updated_at: datetime
    password_digest: str
    engine: AsyncEngine


class ConnectionPools:
    """The process's SQL engines (one per connection) and its one HTTP client, under one network policy."""

    def __init__(self, policy: NetworkPolicy, *, own_database: str | None = None) -> None:
        self.policy = policy
        # The service's own SQLite file: no SqlConnection may open it, whatever the policy.
        self._own_database = os.path.realpath(own_database) if own_database else None
        self._engines: dict[int, _PooledEngine] = {}
        self._lock = asyncio.Lock()
        self._client: httpx.AsyncClient | None = None

    # --- SQL ------------------------------------------------------------------------------------------------

    def _creator(self, connection: SqlConnection, password: str | None) -> Callable[[], Awaitable[Any]]:
        family = engine_family(connection.db_engine)
        host, database, user, timeout = (
            connection.hostname,
            connection.database,
            connection.username,
            connection.timeout,
        )
        port = connection.port or DEFAULT_PORTS.get(family, 0)
        own = self._own_database
        context = _ssl_context(connection)

        async def create() -> Any:
            if family == "sqlite":
                if not self.policy.allow_all:
                    raise NetworkRefused(
                        "SQLite files are local to this server: the network policy "
                        "(SMARTER_CORE_PLUGIN_NETWORKS=public) refuses them."
                    )
                path = await asyncio.to_thread(_sqlite_path, database, own)
                # Read-only: a plugin never writes, and no file is ever created by opening it.
                return await aiosqlite.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout)
            address = await checked_address(self.policy, host, port)
            if family == "postgresql":
                return await asyncpg.connect(
                    host=address,
                    port=port,
                    user=user or None,
                    password=password,
                    database=database,
                    timeout=timeout,
                    ssl=context or False,
                    server_settings={"application_name": "smarter-core"},
                )
            return await aiomysql.connect(
                host=address,
                port=port,
                user=user or "",
                password=password or "",
                db=database or None,
                connect_timeout=timeout,
                ssl=context,
                autocommit=False,
            )

        return create

    def _new_engine(self, connection: SqlConnection, password: str | None) -> AsyncEngine:
        family = engine_family(connection.db_engine)
        url = {"postgresql": "postgresql+asyncpg://", "mysql": "mysql+aiomysql://"}.get(family, "sqlite+aiosqlite://")
        options: dict[str, Any] = {"async_creator": self._creator(connection, password), "pool_pre_ping": True}
        if family != "sqlite":
            options.update(
                pool_size=connection.pool_size,
                max_overflow=connection.max_overflow,
                pool_timeout=connection.timeout,
                pool_recycle=3600,
            )
        return create_async_engine(url, **options)

    async def _engine(self, connection: SqlConnection, password: str | None) -> AsyncEngine:
        digest = _password_digest(password)
        async with self._lock:
            pooled = self._engines.get(connection.id)
            if pooled is not None and (pooled.updated_at, pooled.password_digest) == (connection.updated_at, digest):
                return pooled.engine
            if pooled is not None:
                await pooled.engine.dispose()
            engine = self._new_engine(connection, password)
            self._engines[connection.id] = _PooledEngine(connection.updated_at, digest, engine)
            return engine

    async def discard_sql(self, connection_id: int) -> None:
        """Dispose the engine of a deleted (or changed) connection; its pooled connections close."""
        async with self._lock:
            pooled = self._engines.pop(connection_id, None)
        if pooled is not None:
            await pooled.engine.dispose()

    @asynccontextmanager
    async def sql_connection(self, connection: SqlConnection, password: str | None) -> AsyncIterator[AsyncConnection]:
        """A pooled connection to the connection's database, opened within its timeout.

        Opening raises `NetworkRefused` (policy), `UpstreamTimeout` (504) or `UpstreamFailed` (502), each a
        sentence without secrets. What the caller runs on it is the caller's to bound and translate.
        """
        engine = await self._engine(connection, password)
        try:
            async with asyncio.timeout(connection.timeout):
                conn = await engine.connect()
        except UpstreamFailed:
            raise
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"The database did not answer within the connection's timeout ({connection.timeout} s)."
            ) from exc
        except DBAPIError as exc:
            detail = _without(str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else "", password)
            raise UpstreamFailed(f"The database refused the connection: {detail or type(exc.orig).__name__}.") from exc
        except (OSError, SQLAlchemyError, ssl.SSLError) as exc:
            detail = _without(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, password)
            raise UpstreamFailed(f"The database could not be reached: {detail}.") from exc
        except Exception as exc:  # a driver's own error class (asyncpg, aiomysql) outside the DBAPI hierarchy
            detail = _without(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, password)
            raise UpstreamFailed(f"The database refused the connection: {detail}.") from exc
        try:
            yield conn
        finally:
            await conn.close()

    # --- API ------------------------------------------------------------------------------------------------

    def client(self) -> httpx.AsyncClient:
        """The process's one HTTP client (created on first use, inside the event loop)."""
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False)
        return self._client

    async def api_request(
        self,
        connection: ApiConnection,
        secret_value: str | None,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        redirects: Redirects = "same_host",
        max_bytes: int = MAX_RESPONSE_BYTES,
    ) -> ApiResponse:
        """Send `method url` with the connection's auth, within its timeout, the policy checked on every hop.

        `url` is absolute (the caller joins `baseUrl` and the endpoint). Redirects: `same_host` follows those
        to the same host only (the plugin runtime), `any` follows every one (credentials are not sent to
        another host), `none` returns the 3xx. Raises `NetworkRefused`, `UpstreamFailed` (502: unreachable,
        a refused redirect, a body over `max_bytes`) or `UpstreamTimeout` (504).
        """
        try:
            async with asyncio.timeout(connection.timeout):
                return await self._send(
                    connection, secret_value, method, url, params, headers, json, redirects, max_bytes
                )
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"The API did not answer within the connection's timeout ({connection.timeout} s)."
            ) from exc

    async def _send(
        self,
        connection: ApiConnection,
        secret_value: str | None,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        json: Any,
        redirects: Redirects,
        max_bytes: int,
    ) -> ApiResponse:
        request_headers = httpx.Headers(headers or {})
        request_headers.update(auth_headers(connection, secret_value))
        first_host: str | None = None
        for _hop in range(MAX_REDIRECTS + 1):
            target = _absolute(url)
            if first_host is None:
                first_host = target.host
            elif target.host != first_host:
                if redirects == "same_host":
                    raise UpstreamFailed(
                        f"The API redirected to another host ({target.host}); only same-host redirects are followed."
                    )
                for name in _CREDENTIAL_HEADERS:
                    request_headers.pop(name, None)
            response = await self._hop(
                connection, secret_value, method, target, params, request_headers, json, max_bytes
            )
            location = response.headers.get("location")
            if redirects == "none" or response.status_code not in (301, 302, 303, 307, 308) or not location:
                return response
            url = urljoin(str(target), location)
            params = None  # the Location is the whole next URL
            if response.status_code == 303 or (response.status_code in (301, 302) and method not in ("GET", "HEAD")):
                method, json = "GET", None
        raise UpstreamFailed(f"The API redirected more than {MAX_REDIRECTS} times.")

    async def _hop(
        self,
        connection: ApiConnection,
        secret_value: str | None,
        method: str,
        target: httpx.URL,
        params: Mapping[str, Any] | None,
        headers: httpx.Headers,
        json: Any,
        max_bytes: int,
    ) -> ApiResponse:
        port = target.port or (443 if target.scheme == "https" else 80)
        address = await checked_address(self.policy, target.host, port)
        hop_headers = httpx.Headers(headers)
        hop_headers["Host"] = target.netloc.decode("ascii")
        extensions: dict[str, Any] = {"sni_hostname": target.host} if target.scheme == "https" else {}
        request = self.client().build_request(
            method,
            target.copy_with(host=address),
            params=params,
            headers=hop_headers,
            json=json,
            timeout=httpx.Timeout(connection.timeout),
            extensions=extensions,
        )
        try:
            response = await self.client().send(request, stream=True)
            try:
                body = bytearray()
                async for chunk in response.aiter_bytes():  # decoded: the cap also bounds a compressed bomb
                    body += chunk
                    if len(body) > max_bytes:
                        raise UpstreamFailed(f"The API's response is larger than {max_bytes // 1024} KiB.")
                content = bytes(body)
            finally:
                await response.aclose()
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(
                f"The API did not answer within the connection's timeout ({connection.timeout} s)."
            ) from exc
        except httpx.HTTPError as exc:
            detail = _without(str(exc) or type(exc).__name__, secret_value)
            raise UpstreamFailed(f"The API at {target.host} could not be reached: {detail}.") from exc
        return ApiResponse(response.status_code, response.headers, content, str(target))

    # --- lifetime -------------------------------------------------------------------------------------------

    async def close(self) -> None:
        """At shutdown: every engine disposed, the HTTP client closed."""
        async with self._lock:
            engines, self._engines = list(self._engines.values()), {}
        for pooled in engines:
            await pooled.engine.dispose()
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _absolute(url: str) -> httpx.URL:
    try:
        target = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise UpstreamFailed("The API URL is not a valid URL.") from exc
    if target.scheme not in ("http", "https") or not target.host:
        raise UpstreamFailed("The API URL must be an absolute http or https URL.")
    return target


def auth_headers(connection: ApiConnection, secret_value: str | None) -> dict[str, str]:
    """The headers of the connection's `authMethod` (none without a secret value)."""
    if secret_value is None or connection.auth_method == "none":
        return {}
    if connection.auth_method == "basic":
        token = base64.b64encode(f"{connection.username or ''}:{secret_value}".encode()).decode("ascii")
        return {"Authorization": f"Basic {token}"}
    if connection.auth_method == "token":
        return {"Authorization": f"Bearer {secret_value}"}
    if connection.auth_method == "api_key":
        return {"X-API-Key": secret_value}
    return {}
