"""The `sql` class: the plugin's query with each `{name}` placeholder a bound parameter, in a read-only
transaction with a statement timeout, at most `limit` rows.

Never text substitution (the original replaced placeholders with quoted literals): the query text is fixed
when the plugin is written, and an argument such as `1; DROP TABLE x` or `' OR 1=1 --` is a value. The
transaction is read-only on the database's side (PostgreSQL `BEGIN READ ONLY`, MySQL/MariaDB
`SET TRANSACTION READ ONLY`, SQLite `PRAGMA query_only` on a file opened read-only), so a query that writes
fails whatever it is. Rows are read from a cursor, `limit + 1` of them (the extra one says `truncated`), and
the transaction is rolled back.

PostgreSQL runs on the pooled connection's asyncpg driver itself (`driver_connection`, public on SQLAlchemy's
pooled connections), the statement compiled once by SQLAlchemy's asyncpg dialect: `BEGIN READ ONLY` and
`SET LOCAL statement_timeout` in one round trip (our text, an integer), the query's cursor bound and its first
`limit + 1` rows fetched in one more through asyncpg's prepared-statement cache (extended protocol: bound
parameters, one statement only), its portal closed if the rows ran out, `ROLLBACK`. Through SQLAlchemy's
cursor the same took five round trips and twice the CPU.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from functools import lru_cache
from typing import Any

import aiomysql
import asyncpg
from sqlalchemy import Boolean, Float, Integer, String, TextClause, bindparam, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import TypeEngine

from app.models import SqlConnection
from app.network import UpstreamFailed, UpstreamTimeout
from app.schemas.plugin_data import PLACEHOLDER
from app.services.connections.rules import engine_family
from app.services.plugin_runtime import connected
from app.services.plugin_runtime.kinds import CallContext, JsonObject, KindRuntime, Outcome, register
from app.services.plugins.views import PluginView

KIND = "SqlPlugin"
# SQLSTATE / server error codes of a statement cancelled by its timeout.
_PG_CANCELED = "57014"
_MYSQL_TIMEOUTS = (3024, 1969)  # MySQL max_execution_time, MariaDB max_statement_time
_TYPES: dict[str, TypeEngine[Any]] = {"string": String(), "integer": Integer(), "number": Float(), "boolean": Boolean()}
_MESSAGE_MAX = 300
# Simple-query protocol, our own text only (the timeout an integer): two statements, one round trip.
_PG_BEGIN = "BEGIN READ ONLY; SET LOCAL statement_timeout = {milliseconds:d}"
_PG_DIALECT = make_url("postgresql+asyncpg://").get_dialect()()
# SQLite virtual machine instructions between two looks at the deadline.
_SQLITE_PROGRESS_STEPS = 10_000
# The database's own timeout ends a statement first and leaves its connection usable; this one is the backstop.
_BACKSTOP_SECONDS = 2


@lru_cache(maxsize=1024)
def bound_query(query: str, types: tuple[tuple[str, str], ...]) -> TextClause:
    """`query` with each `{name}` as the bound parameter `:name` (typed as declared); every other colon is
    escaped, so nothing in the text but the placeholders binds."""
    escaped = query.replace(":", "\\:")
    statement = text(PLACEHOLDER.sub(lambda match: f":{match.group(1)}", escaped))
    used = set(PLACEHOLDER.findall(query))
    kinds = dict(types)
    return statement.bindparams(
        *(bindparam(name, type_=_TYPES[kinds[name]]) for name in sorted(used) if kinds.get(name) in _TYPES)
    )


@lru_cache(maxsize=1024)
def postgresql_statement(statement: TextClause) -> tuple[str, tuple[str, ...]]:
    """The statement as asyncpg runs it (`$1::INTEGER`, ...) and its parameters' names in `$n` order."""
    compiled = statement.compile(dialect=_PG_DIALECT)
    return compiled.string, tuple(compiled.positiontup or ())


def _bound_value(value: Any, kind: str) -> Any:
    if value is not None and kind in ("object", "array"):
        return json.dumps(value)
    return value


def _first_line(message: str, secret: str | None) -> str:
    line = (message.strip().splitlines() or [""])[0][:_MESSAGE_MAX]
    return line.replace(secret, "********") if secret else line


# The drivers' own errors: SQLAlchemy does not wrap every one of them (asyncpg's, raised while a cursor fetches).
DRIVER_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    aiomysql.MySQLError,
    sqlite3.Error,
)
FAILURES: tuple[type[Exception], ...] = (DBAPIError, *DRIVER_ERRORS)


def _is_timeout(error: Exception) -> bool:
    original = error.orig if isinstance(error, DBAPIError) else error
    if getattr(original, "sqlstate", None) == _PG_CANCELED or getattr(original, "pgcode", None) == _PG_CANCELED:
        return True
    cause = getattr(original, "__cause__", None)
    if getattr(cause, "sqlstate", None) == _PG_CANCELED:
        return True
    if isinstance(original, sqlite3.OperationalError) and str(original) == "interrupted":
        return True
    args: tuple[Any, ...] = tuple(getattr(original, "args", ()))
    return len(args) > 0 and args[0] in _MYSQL_TIMEOUTS


async def _read_only(conn: AsyncConnection, family: str, timeout_ms: int) -> None:
    """Make this transaction read-only, with the statement timeout, before the query runs (MySQL, SQLite)."""
    if family == "mysql":
        # Before the transaction's first statement: applies to the next transaction only.
        await conn.execute(text("SET TRANSACTION READ ONLY"))
        if conn.dialect.is_mariadb:  # type: ignore[attr-defined]
            await conn.execute(text(f"SET SESSION max_statement_time = {timeout_ms / 1000:.3f}"))
        else:
            await conn.execute(text(f"SET SESSION max_execution_time = {int(timeout_ms)}"))
    else:
        await conn.execute(text("PRAGMA query_only = ON"))
        # SQLite has no statement timeout: its progress handler ends the statement once the deadline passed.
        driver = (await conn.get_raw_connection()).driver_connection
        deadline = time.monotonic() + timeout_ms / 1000
        if driver is not None:
            await driver.set_progress_handler(lambda: time.monotonic() > deadline, _SQLITE_PROGRESS_STEPS)


async def run_query(
    conn: AsyncConnection, family: str, statement: TextClause, values: JsonObject, limit: int, seconds: int
) -> tuple[list[str], list[Any]]:
    """The column names and at most `limit + 1` rows of `statement`, read-only, rolled back after."""
    if family == "postgresql":
        return await _postgresql_rows(conn, statement, values, limit, seconds)
    try:
        await _read_only(conn, family, seconds * 1000)
        result = await conn.stream(statement, values)
        try:
            rows = await result.fetchmany(limit + 1)
            columns = list(result.keys())
        finally:
            await result.close()
    finally:
        await conn.rollback()
    return columns, list(rows)


class Dropped(Exception):
    """The pooled connection turned out closed by the server: the query only reads, so it may run once more."""


async def _postgresql_rows(
    conn: AsyncConnection, statement: TextClause, values: JsonObject, limit: int, seconds: int
) -> tuple[list[str], list[Any]]:
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None  # a checked-out connection has its driver's
    query, names = postgresql_statement(statement)
    records: list[Any] = []
    try:
        await driver.execute(_PG_BEGIN.format(milliseconds=int(seconds * 1000)))
        # A cursor (it needs the transaction) fetching `limit + 1` rows in the round trip that binds it.
        async for record in driver.cursor(query, *(values[name] for name in names), prefetch=limit + 1):
            records.append(record)
            if len(records) > limit:
                break
    except asyncio.CancelledError:
        raise  # the backstop fired: the caller invalidates the connection
    except Exception as exc:
        if driver.is_closed():  # the server had ended it
            await conn.invalidate()
            raise Dropped() from exc
        await _roll_back(conn, driver)
        raise
    await _roll_back(conn, driver)
    return (list(records[0].keys()) if records else []), records


async def _roll_back(conn: AsyncConnection, driver: Any) -> None:
    try:
        await driver.execute("ROLLBACK")
    except Exception:
        await conn.invalidate()  # its transaction's state unknown: never back to the pool
        raise


async def _query(
    context: CallContext,
    connection: SqlConnection,
    password: str | None,
    statement: TextClause,
    values: JsonObject,
    limit: int,
) -> tuple[list[str], list[Any]]:
    assert context.pools is not None  # `plugin_connection` checked
    family, timeout = engine_family(connection.db_engine), connection.timeout
    async with context.pools.sql_connection(connection, password) as conn:
        try:
            async with asyncio.timeout(timeout + _BACKSTOP_SECONDS):
                return await run_query(conn, family, statement, values, limit, timeout)
        except TimeoutError:
            # The backstop fired: the connection may still be busy, so it never goes back to the pool.
            await conn.invalidate()
            raise


async def execute(view: PluginView, arguments: JsonObject, context: CallContext) -> Outcome:
    data, connection, password = await connected.plugin_connection(
        view, context, SqlConnection, "password_secret_id", KIND
    )
    declared = {p["name"]: p.get("type") or "string" for p in data.get("parameters") or []}
    statement = bound_query(data["sql_query"], tuple(sorted(declared.items())))
    used = set(PLACEHOLDER.findall(data["sql_query"]))
    arguments = connected.with_defaults(view, arguments)
    values = {name: _bound_value(arguments.get(name), declared.get(name, "string")) for name in used}
    limit: int = data["result_limit"]
    timeout = connection.timeout
    try:
        try:
            columns, rows = await _query(context, connection, password, statement, values, limit)
        except (DBAPIError, Dropped) as exc:
            if isinstance(exc, DBAPIError) and not exc.connection_invalidated:
                raise
            # A pooled connection the server had dropped (the pools do not ping on checkout): the query only
            # reads, so it runs once more, on a fresh connection.
            columns, rows = await _query(context, connection, password, statement, values, limit)
    except TimeoutError as exc:
        raise UpstreamTimeout(f"The query did not finish within the connection's timeout ({timeout} s).") from exc
    except Dropped as exc:
        detail = _first_line(str(exc.__cause__), password) or "the connection closed"
        raise UpstreamFailed(f"The database failed: {detail}") from exc
    except FAILURES as exc:
        if _is_timeout(exc):
            raise UpstreamTimeout(f"The query did not finish within the connection's timeout ({timeout} s).") from exc
        original = exc.orig if isinstance(exc, DBAPIError) else exc
        detail = _first_line(str(original), password) or type(original).__name__
        raise UpstreamFailed(f"The database failed: {detail}") from exc
    except SQLAlchemyError as exc:
        raise UpstreamFailed(f"The database failed: {_first_line(str(exc), password)}") from exc
    result = [{column: connected.json_safe(value) for column, value in zip(columns, row, strict=True)} for row in rows]
    truncated = len(result) > limit
    return Outcome(result[:limit], truncated=truncated)


SQL = KindRuntime(
    input_schema=connected.input_schema,
    description=connected.description,
    search_text=connected.search_text,
    test_arguments=connected.test_arguments,
    execute=execute,
    read_only=True,
)
register("sql", SQL)
