"""SQL plugins' tool calls against real databases: the local PostgreSQL (a database this module creates, with a
1,000-row table), MariaDB on 127.0.0.1:3306 (skipped when absent) and SQLite files.

Each proves: arguments are bound parameters (`1; DROP TABLE x` and `' OR 1=1 --` are data), a query that
writes fails in the read-only transaction, the row limit and `truncated`, JSON-safe values, the timeout (504),
a database failure (502), the default network policy, and that the password never shows.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiomysql
import asyncpg
import httpx
import pytest

from app.runtime import Runtime
from tests.connections.support import SQL, create, mariadb_available, policy, secret
from tests.support import World

PLUGINS = "/api/v1/plugins/"
PASSWORD = "pg-password-" + secrets.token_hex(8)  # trust authentication accepts any password
INJECTIONS = ("1; DROP TABLE x", "' OR 1=1 --", "x'); DROP TABLE x; --")
ROWS = 1000


# --- databases -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    """A PostgreSQL database of this module: `items` (1,000 rows of every value kind) and `x` (one row)."""
    import asyncio

    name = f"plugin_sql_{secrets.token_hex(4)}"

    async def setup() -> None:
        admin = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(host="127.0.0.1", user="postgres", database=name)
        try:
            await conn.execute(
                "CREATE TABLE items (id integer PRIMARY KEY, name text, price numeric(10, 2), "
                "created timestamptz, blob bytea, tags jsonb)"
            )
            await conn.execute(
                "INSERT INTO items SELECT i, 'item ' || i, i * 1.25, "
                "timestamptz '2026-01-01 00:00:00+00' + i * interval '1 hour', "
                "decode(lpad(to_hex(i), 4, '0'), 'hex'), jsonb_build_object('n', i) FROM generate_series(1, 1000) i"
            )
            await conn.execute("CREATE TABLE x (v integer)")
            await conn.execute("INSERT INTO x VALUES (1)")
        finally:
            await conn.close()

    async def teardown() -> None:
        admin = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    try:
        asyncio.run(setup())
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"the local PostgreSQL (127.0.0.1:5432, user postgres) is not available: {exc}")
    yield name
    asyncio.run(teardown())


async def pg_count(database: str, table: str) -> int:
    conn = await asyncpg.connect(host="127.0.0.1", user="postgres", database=database)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await conn.close()


@pytest.fixture
def sqlite_database(tmp_path: Path) -> str:
    path = tmp_path / "plugin-data.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL, blob BLOB)")
        db.executemany(
            "INSERT INTO items VALUES (?, ?, ?, ?)",
            [(i, f"item {i}", i * 1.25, bytes([i % 256])) for i in range(1, ROWS + 1)],
        )
        db.execute("CREATE TABLE x (v INTEGER)")
        db.execute("INSERT INTO x VALUES (1)")
    return str(path)


@pytest.fixture
async def mariadb_database() -> AsyncIterator[str]:
    if not mariadb_available():
        pytest.skip("MariaDB is not listening on 127.0.0.1:3306 (user root, no password)")
    name = f"plugin_sql_{secrets.token_hex(4)}"
    conn = await aiomysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    try:
        async with conn.cursor() as cursor:
            await cursor.execute(f"CREATE DATABASE {name}")
            await cursor.execute(f"CREATE TABLE {name}.items (id INT PRIMARY KEY, name TEXT, price DECIMAL(10,2))")
            values = ", ".join(f"({i}, 'item {i}', {i * 1.25})" for i in range(1, ROWS + 1))
            await cursor.execute(f"INSERT INTO {name}.items VALUES {values}")
            await cursor.execute(f"CREATE TABLE {name}.x (v INT)")
            await cursor.execute(f"INSERT INTO {name}.x VALUES (1)")
        yield name
    finally:
        async with conn.cursor() as cursor:
            await cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.close()


async def mariadb_count(database: str, table: str) -> int:
    conn = await aiomysql.connect(host="127.0.0.1", port=3306, user="root", password="", db=database)
    try:
        async with conn.cursor() as cursor:
            await cursor.execute(f"SELECT count(*) FROM {table}")
            row = await cursor.fetchone()
            return int(row[0])
    finally:
        conn.close()


# --- plugins ---------------------------------------------------------------------------------------------------


async def sql_plugin(
    client: httpx.AsyncClient,
    world: World,
    name: str,
    query: str,
    *,
    connection: str,
    parameters: list[dict[str, Any]] | None = None,
    limit: int = 100,
    test_values: list[dict[str, Any]] | None = None,
) -> int:
    body = {
        "name": name,
        "pluginClass": "sql",
        "connection": connection,
        "sqlData": {"sqlQuery": query, "parameters": parameters or [], "limit": limit, "testValues": test_values},
    }
    response = await client.post(PLUGINS, json=body, headers=world["staff_a"].headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def call(client: httpx.AsyncClient, world: World, plugin_id: int, **arguments: Any) -> httpx.Response:
    return await client.post(
        f"{PLUGINS}{plugin_id}/call/", json={"arguments": arguments}, headers=world["regular_a"].headers
    )


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"result", "truncated", "elapsedMs"}
    return body


def problem(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert PASSWORD not in response.text
    detail: str = response.json()["detail"]
    return detail


NAME = [{"name": "name", "type": "string", "required": True}]


async def pg_connection(client: httpx.AsyncClient, world: World, database: str, *, seconds: int = 5) -> str:
    headers = world["staff_a"].headers
    await secret(client, headers, "pg_password", PASSWORD)
    await create(
        client,
        SQL,
        headers,
        name="pg",
        dbEngine="postgresql",
        hostname="127.0.0.1",
        database=database,
        username="postgres",
        password="pg_password",
        timeout=seconds,
    )
    return "pg"


# --- PostgreSQL --------------------------------------------------------------------------------------------------


async def test_postgresql_rows_values_limit_and_injection(
    client: httpx.AsyncClient, world: World, runtime: Runtime, pg_database: str
) -> None:
    connection = await pg_connection(client, world, pg_database)
    with policy(runtime, "any"):
        by_name = await sql_plugin(
            client,
            world,
            "by_name",
            "SELECT id, name, price, created, blob, tags, 'it''s: {}' AS note, now()::date - now()::date AS zero "
            "FROM items WHERE name = {name}",
            connection=connection,
            parameters=NAME,
        )
        body = ok(await call(client, world, by_name, name="item 12"))
        assert body["truncated"] is False
        assert body["result"] == [
            {
                "id": 12,
                "name": "item 12",
                "price": 15,
                "created": "2026-01-01T12:00:00+00:00",
                "blob": "AAw=",
                "tags": {"n": 12},
                "note": "it's: {}",
                "zero": 0,
            }
        ]
        assert ok(await call(client, world, by_name, name="item 3"))["result"][0]["price"] == 3.75

        counting = await sql_plugin(
            client,
            world,
            "counting",
            "SELECT count(*) AS n FROM items WHERE name = {name}",
            connection=connection,
            parameters=NAME,
        )
        for injection in INJECTIONS:
            assert ok(await call(client, world, counting, name=injection))["result"] == [{"n": 0}]
        assert await pg_count(pg_database, "x") == 1

        ten = await sql_plugin(
            client, world, "ten", "SELECT id FROM items ORDER BY id", connection=connection, limit=10
        )
        body = ok(await call(client, world, ten))
        assert (body["result"], body["truncated"]) == ([{"id": i} for i in range(1, 11)], True)
        every = await sql_plugin(
            client, world, "every", "SELECT id FROM items ORDER BY id", connection=connection, limit=1000
        )
        body = ok(await call(client, world, every))
        assert (len(body["result"]), body["truncated"]) == (ROWS, False)


async def test_postgresql_typed_parameters_and_defaults(
    client: httpx.AsyncClient, world: World, runtime: Runtime, pg_database: str
) -> None:
    connection = await pg_connection(client, world, pg_database)
    parameters = [
        {"name": "low", "type": "integer", "required": True},
        {"name": "high", "type": "integer", "default": 3},
        {"name": "cheap", "type": "boolean", "default": True},
    ]
    with policy(runtime, "any"):
        plugin_id = await sql_plugin(
            client,
            world,
            "range",
            "SELECT id FROM items WHERE id BETWEEN {low} AND {high} AND (price < 100) = {cheap} ORDER BY id",
            connection=connection,
            parameters=parameters,
            test_values=[{"name": "low", "value": 2}],
        )
        assert ok(await call(client, world, plugin_id, low=1))["result"] == [{"id": 1}, {"id": 2}, {"id": 3}]
        assert ok(await call(client, world, plugin_id, low=1, high=2, cheap=False))["result"] == []
        tested = await client.post(f"{PLUGINS}{plugin_id}/test/", headers=world["staff_a"].headers)
        assert ok(tested)["result"] == [{"id": 2}, {"id": 3}]
        # Validated before anything runs: a string for an integer, a missing required argument.
        assert (await call(client, world, plugin_id, low="1; DROP TABLE x")).status_code == 422
        assert (await call(client, world, plugin_id)).status_code == 422
    assert await pg_count(pg_database, "x") == 1


@pytest.mark.parametrize(
    "query",
    [
        "INSERT INTO x VALUES (2)",
        "DELETE FROM x RETURNING v",
        "UPDATE x SET v = 3 RETURNING v",
        "DROP TABLE x",
        "WITH gone AS (DELETE FROM x RETURNING v) SELECT * FROM gone",
        "SELECT 1; DELETE FROM x",
    ],
)
async def test_postgresql_writes_fail_in_the_read_only_transaction(
    client: httpx.AsyncClient, world: World, runtime: Runtime, pg_database: str, query: str
) -> None:
    connection = await pg_connection(client, world, pg_database)
    with policy(runtime, "any"):
        plugin_id = await sql_plugin(client, world, "writer", query, connection=connection)
        detail = problem(await call(client, world, plugin_id), 502)
    assert detail.startswith("The database failed")
    assert await pg_count(pg_database, "x") == 1


async def test_postgresql_timeout_is_504_and_the_pool_recovers(
    client: httpx.AsyncClient, world: World, runtime: Runtime, pg_database: str
) -> None:
    connection = await pg_connection(client, world, pg_database, seconds=1)
    with policy(runtime, "any"):
        slow = await sql_plugin(client, world, "slow", "SELECT pg_sleep(10)", connection=connection)
        started = time.monotonic()
        detail = problem(await call(client, world, slow), 504)
        assert time.monotonic() - started < 8
        assert "1 s" in detail
        fast = await sql_plugin(client, world, "fast", "SELECT 1 AS one", connection=connection)
        assert ok(await call(client, world, fast))["result"] == [{"one": 1}]


async def test_postgresql_failures_are_502_without_the_password(
    client: httpx.AsyncClient, world: World, runtime: Runtime, pg_database: str
) -> None:
    connection = await pg_connection(client, world, pg_database)
    headers = world["staff_a"].headers
    await create(
        client,
        SQL,
        headers,
        name="nodb",
        dbEngine="postgresql",
        hostname="127.0.0.1",
        database="no_such_db_q",
        username="postgres",
        password="pg_password",
        timeout=5,
    )
    with policy(runtime, "any"):
        missing_table = await sql_plugin(client, world, "missing", "SELECT * FROM nothing_here", connection=connection)
        assert "nothing_here" in problem(await call(client, world, missing_table), 502)
        no_database = await sql_plugin(client, world, "nodb_plugin", "SELECT 1", connection="nodb")
        problem(await call(client, world, no_database), 502)
    # The default policy refuses the loopback address before any connection attempt (a connection none opened).
    await create(
        client,
        SQL,
        headers,
        name="pg_public",
        dbEngine="postgresql",
        hostname="127.0.0.1",
        database=pg_database,
        username="postgres",
        timeout=5,
    )
    public = await sql_plugin(client, world, "public", "SELECT 1", connection="pg_public")
    refused = problem(await call(client, world, public), 502)
    assert "SMARTER_CORE_PLUGIN_NETWORKS" in refused or "network policy" in refused


async def test_another_tenant_cannot_call_it(
    client: httpx.AsyncClient, world: World, runtime: Runtime, pg_database: str
) -> None:
    connection = await pg_connection(client, world, pg_database)
    with policy(runtime, "any"):
        plugin_id = await sql_plugin(client, world, "private", "SELECT 1 AS one", connection=connection)
        for outsider in ("staff_b", "regular_b"):
            response = await client.post(
                f"{PLUGINS}{plugin_id}/call/", json={"arguments": {}}, headers=world[outsider].headers
            )
            assert response.status_code == 404


# --- SQLite ------------------------------------------------------------------------------------------------------


async def test_sqlite_file(client: httpx.AsyncClient, world: World, runtime: Runtime, sqlite_database: str) -> None:
    headers = world["staff_a"].headers
    await create(client, SQL, headers, name="lite", dbEngine="sqlite", database=sqlite_database, timeout=2)
    with policy(runtime, "any"):
        counting = await sql_plugin(
            client,
            world,
            "counting",
            "SELECT count(*) AS n FROM items WHERE name = {name}",
            connection="lite",
            parameters=NAME,
        )
        for injection in INJECTIONS:
            assert ok(await call(client, world, counting, name=injection))["result"] == [{"n": 0}]
        assert ok(await call(client, world, counting, name="item 7"))["result"] == [{"n": 1}]
        row = await sql_plugin(
            client, world, "row", "SELECT id, price, blob FROM items WHERE id = 2", connection="lite"
        )
        assert ok(await call(client, world, row))["result"] == [{"id": 2, "price": 2.5, "blob": "Ag=="}]
        ten = await sql_plugin(client, world, "ten", "SELECT id FROM items ORDER BY id", connection="lite", limit=10)
        body = ok(await call(client, world, ten))
        assert (len(body["result"]), body["truncated"]) == (10, True)
        for index, query in enumerate(("INSERT INTO x VALUES (2)", "DELETE FROM x", "DROP TABLE x")):
            writer = await sql_plugin(client, world, f"writer_{index}", query, connection="lite")
            problem(await call(client, world, writer), 502)
        slow = await sql_plugin(
            client,
            world,
            "slow",
            "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c) SELECT count(*) AS n FROM c",
            connection="lite",
        )
        problem(await call(client, world, slow), 504)
    with sqlite3.connect(sqlite_database) as db:
        assert db.execute("SELECT count(*) FROM x").fetchone() == (1,)


# --- MariaDB -----------------------------------------------------------------------------------------------------


async def test_mariadb(client: httpx.AsyncClient, world: World, runtime: Runtime, mariadb_database: str) -> None:
    headers = world["staff_a"].headers
    await create(
        client,
        SQL,
        headers,
        name="maria",
        dbEngine="django.db.backends.mysql",
        hostname="127.0.0.1",
        database=mariadb_database,
        username="root",
        timeout=1,
    )
    with policy(runtime, "any"):
        counting = await sql_plugin(
            client,
            world,
            "counting",
            "SELECT count(*) AS n FROM items WHERE name = {name}",
            connection="maria",
            parameters=NAME,
        )
        for injection in INJECTIONS:
            assert ok(await call(client, world, counting, name=injection))["result"] == [{"n": 0}]
        row = await sql_plugin(client, world, "row", "SELECT id, price FROM items WHERE id = 3", connection="maria")
        assert ok(await call(client, world, row))["result"] == [{"id": 3, "price": 3.75}]
        ten = await sql_plugin(client, world, "ten", "SELECT id FROM items ORDER BY id", connection="maria", limit=10)
        body = ok(await call(client, world, ten))
        assert (len(body["result"]), body["truncated"]) == (10, True)
        for index, query in enumerate(("INSERT INTO x VALUES (2)", "DELETE FROM x", "UPDATE x SET v = 5")):
            writer = await sql_plugin(client, world, f"writer_{index}", query, connection="maria")
            problem(await call(client, world, writer), 502)
        slow = await sql_plugin(
            client, world, "slow", "SELECT SLEEP(5) AS s, id FROM items LIMIT 1", connection="maria"
        )
        started = time.monotonic()
        problem(await call(client, world, slow), 504)
        assert time.monotonic() - started < 4
        assert ok(await call(client, world, row))["result"] == [{"id": 3, "price": 3.75}]
    assert await mariadb_count(mariadb_database, "x") == 1
