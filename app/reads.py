"""The reads on every request's path: a Core SELECT built once, run by asyncpg itself on PostgreSQL.

A few statements run on nearly every request or cache miss: the principal behind a key, a plugin's
snapshot, a page of plugin ids. SQLAlchemy's execution layer (execution context, events, a greenlet hop
per call, result wrapping) costs more CPU than asyncpg spends on such a small indexed SELECT (about
110 µs against 70 µs, `bench/`), and a pooled `AsyncConnection` another 20 µs over a bare pool checkout.
So a `Read` keeps its statement as SQLAlchemy Core, compiles it once with the engine's dialect, and on
PostgreSQL hands the SQL to the driver's `fetch` on a connection checked out of the engine's own pool.

The rows are the driver's values. For these statements they are what SQLAlchemy returns: the asyncpg
dialect installs its JSON codecs on every pooled connection and our timestamps need no processing there
(`tests/test_reads.py` runs every `Read` both ways and compares). Parameters get the type conversions
SQLAlchemy would apply; a statement whose parameters SQLAlchemy would expand at execution time (an
expanding `IN`) is refused when it is compiled. On any other database (SQLite) a `Read` is executed by
SQLAlchemy as usual.

Failures stay what the app expects of the database: asyncpg's errors are classified by `app.errors`
(connection loss and timeouts 503, refused values 422). A connection that failed for any reason but a plain
SQL error is invalidated, not returned to the pool, and a lost one invalidates the whole pool, as
SQLAlchemy does on a disconnect.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import Select
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_, greenlet_spawn

Row = Sequence[Any]
# Called with the SQL of each statement a `Read` sends itself (SQLAlchemy's engine events do not see those):
# the tests count a request's statements with it.
statement_observers: list[Callable[[str], None]] = []
# Any SELECT, whatever its columns' types.
AnySelect = Select[*tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class _Parameter:
    name: str | None  # a value the caller gives, by name; None for a constant of the statement itself
    constant: Any  # a literal, a bound constant such as the platform account number (already converted)
    convert: Callable[[Any], Any] | None  # SQLAlchemy's conversion of the type for this dialect, if any


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    parameters: tuple[_Parameter, ...]  # in positional order

    def arguments(self, values: Mapping[str, Any]) -> list[Any]:
        arguments = []
        for parameter in self.parameters:
            if parameter.name is None:
                arguments.append(parameter.constant)
            elif parameter.convert is None:
                arguments.append(values[parameter.name])
            else:
                arguments.append(parameter.convert(values[parameter.name]))
        return arguments


def _compile(statement: AnySelect, dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    sql = str(compiled)
    if "POSTCOMPILE" in sql:
        raise ValueError("A Read cannot expand parameters at execution time; bind a list as one array instead.")
    parameters = []
    for name in compiled.positiontup or ():
        bind = compiled.binds[name]
        convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
        # A parameter the statement was built with (`bindparam("x")`) comes from the caller; any other
        # (`literal(...)`, `column == "constant"`) carries its value.
        if bind.value is None and bind.callable is None:
            parameters.append(_Parameter(name, None, convert))
        else:
            value = bind.effective_value
            parameters.append(_Parameter(None, value if convert is None else convert(value), None))
    return _Compiled(sql=sql, parameters=tuple(parameters))


class Read:
    """One SELECT, compiled once per dialect; `rows` and `first` check a connection out of the engine's pool."""

    __slots__ = ("_compiled", "statement")

    def __init__(self, statement: AnySelect) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, str], _Compiled] = {}

    def compiled(self, dialect: Dialect) -> _Compiled:
        key = (dialect.name, dialect.driver)
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = _compile(self.statement, dialect)
        return found

    async def rows(self, engine: AsyncEngine, values: Mapping[str, Any]) -> Sequence[Row]:
        dialect = engine.dialect
        if dialect.driver != "asyncpg":
            async with engine.connect() as connection:
                return (await connection.execute(self.statement, values)).all()
        compiled = self.compiled(dialect)
        arguments = compiled.arguments(values)
        for observe in statement_observers:
            observe(compiled.sql)
        # One greenlet for the checkout, the statement and the return: the pool is synchronous code that
        # awaits the driver through SQLAlchemy's bridge (to open a connection, ping it, close it).
        return await greenlet_spawn(_fetch, engine.sync_engine, compiled.sql, arguments)

    async def first(self, engine: AsyncEngine, values: Mapping[str, Any]) -> Row | None:
        rows = await self.rows(engine, values)
        return rows[0] if rows else None


def _fetch(engine: Engine, sql: str, arguments: list[Any]) -> Sequence[Row]:
    """Check a connection out, run `sql` with asyncpg, return the connection (in a greenlet: `Read.rows`)."""
    pooled = engine.raw_connection()
    driver: asyncpg.Connection = pooled.driver_connection
    try:
        records: Sequence[Row] = await_(driver.fetch(sql, *arguments))
    except BaseException as error:
        lost = driver.is_closed() or _connection_lost(error)
        if lost or not isinstance(error, asyncpg.PostgresError):
            # Lost, timed out or cancelled mid-statement: this connection's state is unknown. A plain SQL
            # error (a refused value, say) leaves it as good as it was.
            pooled.invalidate(error if isinstance(error, Exception) else None)
        if lost:
            # What SQLAlchemy does on a disconnect: the server may have restarted, taking every pooled
            # connection with it, so all of them are replaced as they are next checked out.
            engine.pool._invalidate(pooled, error if isinstance(error, Exception) else None, _checkin=False)
        raise
    finally:
        pooled.close()
    return records


# The server has closed, or is closing, the session: admin shutdown, crash shutdown, cannot connect now.
_SHUTDOWN_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


def _connection_lost(error: BaseException) -> bool:
    if isinstance(error, asyncpg.PostgresConnectionError | OSError):
        return True  # class 08 (connection exception) included
    if isinstance(error, asyncpg.InternalClientError):
        # The protocol is in a state no statement of ours left it in: the server's FATAL arrived while the
        # connection sat in the pool (a terminated backend), and the close that follows is not yet seen.
        return True
    sqlstate = getattr(error, "sqlstate", None)
    return sqlstate in _SHUTDOWN_SQLSTATES
