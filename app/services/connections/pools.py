"""Outbound connections of SQL and API connections, owned by the Runtime (one `ConnectionPools` per process).

SQL: one pooled async SQLAlchemy engine per connection (asyncpg, aiomysql, aiosqlite), sized by the row's
`pool_size`/`max_overflow`. An engine is keyed by the connection's id, `updated_at` and a digest of the
password: a changed connection or rotated secret gets a new engine and the old one is disposed. Every new
DBAPI connection is opened by `drivers.creator`, which resolves the host, applies the network policy and
connects to the checked address itself.

API: one shared `httpx.AsyncClient` (no redirects of its own, no proxies from the environment); each request
(`api_calls.ApiCall`) is sent to the checked address of its host (TLS still verified against the host name
through SNI), with the connection's timeout, redirects followed hop by hop with the policy applied to each.

The plugin runtime uses `sql_read_only` and `api_request`; the `test/` action `sql_connection` and `api_request`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool

from app.models import ApiConnection, SqlConnection
from app.network import NetworkPolicy, UpstreamFailed, UpstreamTimeout
from app.services.connections.drivers import creator, engine_url, safe_detail
from app.services.connections.rules import engine_family

if TYPE_CHECKING:
    import httpx

    from app.services.connections.api_calls import ApiResponse, Redirects

__all__ = ["MAX_RESPONSE_BYTES", "ConnectionPools"]

# Responses larger than this are refused (the plugin runtime's 1 MiB).
MAX_RESPONSE_BYTES = 1024 * 1024


def _password_digest(password: str | None) -> str:
    return hashlib.sha256(password.encode()).hexdigest() if password is not None else ""


# How long an overflow connection (beyond `pool_size`, at most `max_overflow` of them) stays open once idle.
# SQLAlchemy's pool closes one as soon as it comes back to a pool that has `pool_size` idle: under a steady
# load above `pool_size` calls at a time, that is a new connection (a new server process on PostgreSQL) for
# one call in ten. Kept this long, a busy connection's overflow serves the next calls; an idle one still
# returns to `pool_size` open connections.
OVERFLOW_IDLE_SECONDS = 10.0


@dataclass(slots=True)
class _PooledEngine:
    updated_at: datetime
    password_digest: str
    engine: AsyncEngine
    # Overflow connections kept open (still checked out of the pool, so within its limits), with the time each
    # became idle, the most recent last.
    idle: list[tuple[AsyncConnection, float]] = field(default_factory=list)
    trimming: asyncio.TimerHandle | None = None


async def _keep_open(pooled: _PooledEngine, conn: AsyncConnection) -> bool:
    """Whether `conn`, done with, is an overflow connection its pool would close now (it has `pool_size` idle)
    that is fit for the next call: not invalidated, its transaction (if any) rolled back as the pool would."""
    pool = pooled.engine.pool
    if not isinstance(pool, QueuePool) or pool.checkedin() < pool.size() or conn.invalidated or conn.closed:
        return False
    if conn.in_transaction():
        try:
            await conn.rollback()
        except (SQLAlchemyError, OSError):
            return False  # closed instead: the pool deals with a connection it cannot reset
    return True


def _trim_later(pooled: _PooledEngine) -> None:
    """Close the overflow connections idle for `OVERFLOW_IDLE_SECONDS`, once the first of them is due."""
    if pooled.trimming is None and pooled.idle:
        due = pooled.idle[0][1] + OVERFLOW_IDLE_SECONDS - time.monotonic()
        pooled.trimming = asyncio.get_running_loop().call_later(max(due, 0.0), _start_trim, pooled)


# The running trims (the event loop keeps weak references to tasks only).
_trimming: set[asyncio.Task[None]] = set()


def _start_trim(pooled: _PooledEngine) -> None:
    pooled.trimming = None
    task = asyncio.get_running_loop().create_task(_trim(pooled))
    _trimming.add(task)
    task.add_done_callback(_trimming.discard)


async def _trim(pooled: _PooledEngine) -> None:
    deadline = time.monotonic() - OVERFLOW_IDLE_SECONDS
    # `idle` is in the order the connections became idle: the due ones are its head.
    due = [conn for conn, since in pooled.idle if since <= deadline]
    del pooled.idle[: len(due)]
    _trim_later(pooled)
    for conn in due:
        await conn.close()


async def _dispose(pooled: _PooledEngine) -> None:
    """Close the engine's connections, the overflow kept open included."""
    if pooled.trimming is not None:
        pooled.trimming.cancel()
        pooled.trimming = None
    idle, pooled.idle = pooled.idle, []
    for conn, _ in idle:
        await conn.close()
    await pooled.engine.dispose()


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

    def _new_engine(self, connection: SqlConnection, password: str | None) -> AsyncEngine:
        create = creator(connection, password, lambda: self.policy, self._own_database)
        # No `pool_pre_ping`: a round trip per checkout, on every call. A pooled connection the server dropped
        # fails its first statement instead; SQLAlchemy then invalidates it (`DBAPIError.connection_invalidated`)
        # and the plugin runtime runs its read-only query once more on a fresh one (`plugin_runtime.sql`).
        options: dict[str, Any] = {"async_creator": create}
        if engine_family(connection.db_engine) != "sqlite":
            options.update(
                pool_size=connection.pool_size,
                max_overflow=connection.max_overflow,
                pool_timeout=connection.timeout,
                pool_recycle=3600,
            )
        return create_async_engine(engine_url(connection.db_engine), **options)

    async def engine(self, connection: SqlConnection, password: str | None) -> AsyncEngine:
        """The pooled engine of the connection (a new one, the old disposed, when it or its password changed)."""
        return (await self._pooled(connection, password)).engine

    async def _pooled(self, connection: SqlConnection, password: str | None) -> _PooledEngine:
        digest = _password_digest(password)
        async with self._lock:
            pooled = self._engines.get(connection.id)
            if pooled is not None and (pooled.updated_at, pooled.password_digest) == (connection.updated_at, digest):
                return pooled
            if pooled is not None:
                await _dispose(pooled)
            pooled = _PooledEngine(connection.updated_at, digest, self._new_engine(connection, password))
            self._engines[connection.id] = pooled
            return pooled

    def has_engine(self, connection_id: int) -> bool:
        """Whether the connection has a pooled engine in this process."""
        return connection_id in self._engines

    async def discard_sql(self, connection_id: int) -> None:
        """Dispose the engine of a deleted (or changed) connection; its pooled connections close."""
        async with self._lock:
            pooled = self._engines.pop(connection_id, None)
        if pooled is not None:
            await _dispose(pooled)

    @asynccontextmanager
    async def sql_connection(self, connection: SqlConnection, password: str | None) -> AsyncIterator[AsyncConnection]:
        """A pooled connection to the connection's database, opened within its timeout.

        Opening raises `NetworkRefused` (policy), `UpstreamTimeout` (504) or `UpstreamFailed` (502), each a
        sentence without secrets. What the caller runs on it is the caller's to bound and translate.
        """
        pooled = await self._pooled(connection, password)
        try:
            if pooled.idle:
                conn = pooled.idle.pop()[0]
            else:
                async with asyncio.timeout(connection.timeout):
                    conn = await pooled.engine.connect()
        except UpstreamFailed:
            raise
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"The database did not answer within the connection's timeout ({connection.timeout} s)."
            ) from exc
        except DBAPIError as exc:
            detail = safe_detail(exc.orig or exc, password)
            raise UpstreamFailed(f"The database refused the connection: {detail}.") from exc
        except (OSError, SQLAlchemyError) as exc:
            raise UpstreamFailed(f"The database could not be reached: {safe_detail(exc, password)}.") from exc
        except Exception as exc:  # a driver's own error class (asyncpg, aiomysql) outside the DBAPI hierarchy
            raise UpstreamFailed(f"The database refused the connection: {safe_detail(exc, password)}.") from exc
        try:
            yield conn
        finally:
            if self._engines.get(connection.id) is pooled and await _keep_open(pooled, conn):
                pooled.idle.append((conn, time.monotonic()))
                _trim_later(pooled)
            else:
                await conn.close()

    @asynccontextmanager
    async def sql_read_only(self, connection: SqlConnection, password: str | None) -> AsyncIterator[AsyncConnection]:
        """`sql_connection` inside a read-only transaction whose statements stop after the connection's timeout,
        rolled back at the end: what a plugin's query runs in.

        PostgreSQL: `SET TRANSACTION READ ONLY` and `SET LOCAL statement_timeout`. MySQL/MariaDB: a read-only
        session and transaction, and the session's `max_execution_time` (MySQL, ms) / `max_statement_time`
        (MariaDB, s). SQLite: the file is opened read-only. The caller still bounds its whole call in time.
        """
        family = engine_family(connection.db_engine)
        async with self.sql_connection(connection, password) as conn:
            try:
                if family == "postgresql":
                    await conn.begin()
                    await conn.execute(text("SET TRANSACTION READ ONLY"))
                    await conn.execute(text(f"SET LOCAL statement_timeout = {int(connection.timeout) * 1000}"))
                elif family == "mysql":
                    if getattr(conn.dialect, "is_mariadb", False):
                        limit = f"SET SESSION max_statement_time = {int(connection.timeout)}"
                    else:
                        limit = f"SET SESSION max_execution_time = {int(connection.timeout) * 1000}"
                    await conn.execute(text(limit))
                    # For the session, not just this transaction: a DDL statement commits the transaction it
                    # runs in and would run outside it; a read-only session refuses it (the pool's every use reads).
                    await conn.execute(text("SET SESSION TRANSACTION READ ONLY"))
                    await conn.commit()  # the SETs ran in an implicit transaction; START below opens the real one
                    await conn.begin()
                    await conn.execute(text("START TRANSACTION READ ONLY"))
                else:
                    await conn.begin()
            except DBAPIError as exc:
                detail = safe_detail(exc.orig or exc, password)
                raise UpstreamFailed(f"The database refused a read-only transaction: {detail}.") from exc
            try:
                yield conn
            finally:
                await conn.rollback()

    # --- API ------------------------------------------------------------------------------------------------

    def client(self) -> httpx.AsyncClient:
        """The process's one HTTP client (created on first use, inside the event loop).

        `httpx` (with the command line it brings: click, rich, pygments, ~6 MiB) is imported then, by the
        first API call: a worker that calls no API does without it.
        """
        if self._client is None:
            import httpx

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
        from app.services.connections.api_calls import ApiCall  # with `client`'s httpx

        call = ApiCall(self.client(), self.policy, connection, secret_value, redirects, max_bytes)
        try:
            async with asyncio.timeout(connection.timeout):
                return await call.send(method, url, params, headers, json)
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"The API did not answer within the connection's timeout ({connection.timeout} s)."
            ) from exc

    # --- lifetime -------------------------------------------------------------------------------------------

    async def close(self) -> None:
        """At shutdown: every engine disposed, the HTTP client closed."""
        async with self._lock:
            engines, self._engines = list(self._engines.values()), {}
        for pooled in engines:
            await _dispose(pooled)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
