"""`ConnectionPools`, the functions the plugin runtime calls, against real targets: `sql_read_only` on PostgreSQL,
MariaDB and SQLite (writes refused, statements stopped at the timeout), `api_request` on a local HTTP server
(redirect rules, the size cap, credentials), engines replaced when a connection changes."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.models import ApiConnection, SqlConnection
from app.network import NetworkPolicy, NetworkRefused, UpstreamFailed, UpstreamTimeout
from app.services.connections import pools as pools_module
from app.services.connections.pools import ConnectionPools
from tests.connections.support import http_server, mariadb_available

NOW = datetime.now(UTC)


@pytest.fixture
async def pools() -> AsyncIterator[ConnectionPools]:
    own = ConnectionPools(NetworkPolicy.parse("any"))
    yield own
    await own.close()


def sql(connection_id: int, engine: str, **values: object) -> SqlConnection:
    fields: dict[str, object] = {
        "id": connection_id,
        "db_engine": engine,
        "hostname": "127.0.0.1",
        "timeout": 1,
        "pool_size": 2,
        "max_overflow": 1,
        "use_ssl": False,
        "updated_at": NOW,
    }
    fields.update(values)
    return SqlConnection(**fields)


def targets(tmp_path: Path) -> list[tuple[SqlConnection, str]]:
    path = tmp_path / "data.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x INTEGER)")
    found = [
        (sql(1, "postgresql", database="postgres", username="postgres"), "SELECT pg_sleep(3)"),
        (sql(3, "sqlite", hostname="", database=str(path)), ""),
    ]
    if mariadb_available():
        found.append((sql(2, "mysql", database="mysql", username="root"), "SELECT SLEEP(3)"))
    return found


async def test_read_only_transactions(pools: ConnectionPools, tmp_path: Path) -> None:
    for connection, slow in targets(tmp_path):
        async with pools.sql_read_only(connection, None) as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar() == 1
        with pytest.raises(DBAPIError, match=r"(?i)read.only|readonly"):
            async with pools.sql_read_only(connection, None) as conn:
                await conn.execute(text("CREATE TABLE written_by_a_plugin (x INTEGER)"))
        if slow:
            with pytest.raises(DBAPIError, match=r"(?i)timeout|interrupted"):
                async with pools.sql_read_only(connection, None) as conn:
                    await conn.execute(text(slow))
        # The pool is still usable after each failure.
        async with pools.sql_read_only(connection, None) as conn:
            assert (await conn.execute(text("SELECT 2"))).scalar() == 2


async def test_engine_follows_the_connection(pools: ConnectionPools) -> None:
    connection = sql(1, "postgresql", database="postgres", username="postgres")
    first = await pools.engine(connection, None)
    assert await pools.engine(connection, None) is first
    assert await pools.engine(connection, "rotated") is not first
    changed = sql(1, "postgresql", database="postgres", username="postgres", updated_at=NOW + timedelta(seconds=1))
    second = await pools.engine(changed, "rotated")
    assert second is not first
    await pools.discard_sql(1)
    assert await pools.engine(changed, "rotated") is not second


async def _backend_pids(pools: ConnectionPools, connection: SqlConnection, how_many: int) -> set[int]:
    """The server processes of `how_many` connections checked out at once."""
    async with AsyncExitStack() as stack:
        conns = [await stack.enter_async_context(pools.sql_connection(connection, None)) for _ in range(how_many)]
        return {int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()) for conn in conns}


async def test_overflow_connections_stay_open_while_in_use_then_close(
    pools: ConnectionPools, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pools_module, "OVERFLOW_IDLE_SECONDS", 0.2)
    connection = sql(1, "postgresql", database="postgres", username="postgres", pool_size=1, max_overflow=1)
    engine = await pools.engine(connection, None)
    first = await _backend_pids(pools, connection, 2)  # the pooled connection and the overflow one
    assert len(first) == 2
    # Back to a pool that had `pool_size` idle, the overflow connection was kept open for the next call.
    assert await _backend_pids(pools, connection, 2) == first
    # Kept open, it stays within the limits: a third connection at once waits (then times out) as before.
    with pytest.raises(UpstreamTimeout):
        await _backend_pids(pools, connection, 3)
    assert await _backend_pids(pools, connection, 2) == first
    # Idle for `OVERFLOW_IDLE_SECONDS`, it is closed: `pool_size` connections remain.
    await asyncio.sleep(0.5)
    assert (engine.pool.checkedout(), engine.pool.checkedin()) == (0, 1)  # type: ignore[attr-defined]
    again = await _backend_pids(pools, connection, 2)
    assert len(again & first) == 1


def api(base_url: str, **values: object) -> ApiConnection:
    fields: dict[str, object] = {"id": 1, "base_url": base_url, "auth_method": "none", "timeout": 5, "updated_at": NOW}
    fields.update(values)
    return ApiConnection(**fields)


async def test_api_request(pools: ConnectionPools) -> None:
    with http_server("127.0.0.2") as (other_url, other_seen):
        routes = {
            "/big": (200, {"Content-Type": "text/plain"}, b"x" * 2048),
            "/elsewhere": (302, {"Location": f"{other_url}/landing"}, b""),
            "/same": (303, {"Location": "/answer?x=1"}, b""),
        }
        with http_server(routes=routes) as (base_url, seen):
            connection = api(base_url, auth_method="api_key")
            response = await pools.api_request(
                connection, "k3y", "POST", f"{base_url}/echo", params={"q": "a b"}, json={"n": 1}
            )
            assert response.status_code == 200
            assert response.content == b'{"ok": true}'
            method, path, headers = seen.requests[-1]
            assert (method, path, headers["X-API-Key"]) == ("POST", "/echo?q=a+b", "k3y")
            assert headers["Host"] == base_url.removeprefix("http://")

            with pytest.raises(UpstreamFailed, match="larger than 1 KiB"):
                await pools.api_request(connection, None, "GET", f"{base_url}/big", max_bytes=1024)
            with pytest.raises(UpstreamFailed, match="another host"):
                await pools.api_request(connection, "k3y", "GET", f"{base_url}/elsewhere")
            assert other_seen.requests == []
            followed = await pools.api_request(connection, "k3y", "POST", f"{base_url}/same", json={"n": 1})
            assert followed.status_code == 200
            assert seen.requests[-1][:2] == ("GET", "/answer?x=1")  # 303: the next hop is a GET
            kept = await pools.api_request(connection, "k3y", "GET", f"{base_url}/elsewhere", redirects="none")
            assert kept.status_code == 302
            with pytest.raises(UpstreamFailed, match="absolute http"):
                await pools.api_request(connection, None, "GET", "file:///etc/passwd")
    pools.policy = NetworkPolicy.parse("public")
    with pytest.raises(NetworkRefused):
        await pools.api_request(api("http://localhost/"), None, "GET", "http://localhost/")
