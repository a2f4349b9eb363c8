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

The connection comes from the engine's `ReadLane` when the runtime opened one (`open_lane`): a few
connections kept out of the pool between statements and lent without a pool checkout, which runs the
pool's synchronous code in a greenlet for about as much CPU as the statement itself. Otherwise, or when
every lane connection is lent, it is checked out of the pool for the one statement.

Failures stay what the app expects of the database: asyncpg's errors are classified by `app.errors`
(connection loss and timeouts 503, refused values 422). A connection that failed for any reason but a plain
SQL error is invalidated, not reused, and a lost one invalidates the whole pool and lane, as SQLAlchemy
does on a disconnect.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import Select
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import Pool, PoolProxiedConnection
from sqlalchemy.util import await_, greenlet_spawn

from app.errors import is_connection_lost

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
        sync_engine = engine.sync_engine
        lane = _lanes.get(sync_engine.pool)
        if lane is not None:
            return await lane.fetch(sync_engine, compiled.sql, arguments)
        return await greenlet_spawn(_fetch, sync_engine, compiled.sql, arguments)

    async def first(self, engine: AsyncEngine, values: Mapping[str, Any]) -> Row | None:
        rows = await self.rows(engine, values)
        return rows[0] if rows else None


def _fetch(engine: Engine, sql: str, arguments: list[Any]) -> Sequence[Row]:
    """Check a connection out of the pool, run `sql` with asyncpg, return the connection.

    In one greenlet for the checkout, the statement and the return: the pool is synchronous code that
    awaits the driver through SQLAlchemy's bridge (to open a connection, ping it, close it).
    """
    pooled = engine.raw_connection()
    try:
        records: Sequence[Row] = await_(_driver(pooled).fetch(sql, *arguments))
    except BaseException as error:
        if not _keeps(pooled, error):
            _discard(engine, pooled, error)
        raise
    finally:
        pooled.close()
    return records


class ReadLane:
    """Connections the reads keep out of the engine's pool between statements, lent with a list pop.

    At most `size` of them (part of the pool's own count, so the service opens no more connections than
    configured); when all are lent, a read takes the pool's path. As the pool's checkout does
    (`app.db._ping_idle_connections`), a connection idle longer than `ping_after` seconds is pinged before
    it is lent; one that fails its ping makes the read take the pool's path, on fresh connections.
    """

    def __init__(self, size: int, ping_after: float) -> None:
        self.size = size
        self.ping_after = ping_after
        self._idle: list[tuple[PoolProxiedConnection, float]] = []  # a stack: the warmest on top
        self._held = 0  # idle and lent
        # Bumped when the server was lost or the lane closed: connections lent before then are not kept.
        self._generation = 0
        # The pool's last invalidation as the lane last saw it: when the pool replaces its connections
        # (a disconnect seen by any session), the lane's go back to it to be replaced too.
        self._pool_invalidated_at = 0.0

    @property
    def held(self) -> int:
        return self._held

    async def fetch(self, engine: Engine, sql: str, arguments: list[Any]) -> Sequence[Row]:
        pooled = await self._lend(engine)
        if pooled is None:
            return await greenlet_spawn(_fetch, engine, sql, arguments)
        generation = self._generation
        try:
            records: Sequence[Row] = await _driver(pooled).fetch(sql, *arguments)
        except BaseException as error:
            await self._failed(engine, pooled, error, generation)
            raise
        await self._give_back(pooled, generation)
        return records

    async def _lend(self, engine: Engine) -> PoolProxiedConnection | None:
        invalidated_at = engine.pool._invalidate_time
        if invalidated_at != self._pool_invalidated_at:
            self._pool_invalidated_at = invalidated_at
            await greenlet_spawn(_close_all, self._retire())
        if self._idle:
            pooled, since = self._idle.pop()
            if time.monotonic() - since < self.ping_after:
                return pooled
            generation = self._generation
            try:
                await _driver(pooled).fetchrow(";")
            except BaseException as error:
                await self._failed(engine, pooled, error, generation)
                if not isinstance(error, Exception):
                    raise
                return None  # the pool's checkout pings, or opens a connection, for this read
            return pooled
        if self._held >= self.size:
            return None
        self._held += 1
        try:
            checked_out: PoolProxiedConnection = await greenlet_spawn(engine.raw_connection)
        except BaseException:
            self._held -= 1
            raise
        return checked_out

    async def _give_back(self, pooled: PoolProxiedConnection, generation: int) -> None:
        if generation == self._generation:
            self._idle.append((pooled, time.monotonic()))
            return
        self._held -= 1
        await greenlet_spawn(pooled.close)  # back to the pool, which replaces it if it was invalidated

    async def _failed(
        self, engine: Engine, pooled: PoolProxiedConnection, error: BaseException, generation: int
    ) -> None:
        if _keeps(pooled, error):
            await self._give_back(pooled, generation)
            return
        self._held -= 1
        # The server went away: every connection the lane holds went with it.
        stale = self._retire() if _lost(pooled, error) else []
        await greenlet_spawn(_discard, engine, pooled, error, stale)

    async def close(self) -> None:
        """Return the idle connections to the pool; lent ones go back when their statement ends."""
        self.size = 0
        await greenlet_spawn(_close_all, self._retire())

    def _retire(self) -> list[PoolProxiedConnection]:
        """Keep none of the connections held now: the idle ones are handed over, the lent ones go back to
        the pool when their statement ends."""
        self._generation += 1
        idle = [pooled for pooled, _since in self._idle]
        self._idle.clear()
        self._held -= len(idle)
        return idle


# The lane of each pool (the engine and its autocommit variant share one pool).
_lanes: weakref.WeakKeyDictionary[Pool, ReadLane] = weakref.WeakKeyDictionary()


def open_lane(engine: AsyncEngine, *, size: int, ping_after: float) -> ReadLane | None:
    """Give the reads on `engine` a lane of `size` connections (asyncpg only; others use their pool)."""
    if engine.dialect.driver != "asyncpg" or size < 1:
        return None
    lane = _lanes[engine.sync_engine.pool] = ReadLane(size, ping_after)
    return lane


def lane_of(engine: AsyncEngine) -> ReadLane | None:
    return _lanes.get(engine.sync_engine.pool)


async def close_lane(engine: AsyncEngine) -> None:
    """Before the engine is disposed: its lane's connections go back to its pool."""
    lane = _lanes.pop(engine.sync_engine.pool, None)
    if lane is not None:
        await lane.close()


def _keeps(pooled: PoolProxiedConnection, error: BaseException) -> bool:
    """A plain SQL error (a refused value, say) leaves the connection as good as it was.

    Anything else (lost, timed out or cancelled mid-statement) leaves its state unknown.
    """
    return isinstance(error, asyncpg.PostgresError) and not _lost(pooled, error)


def _lost(pooled: PoolProxiedConnection, error: BaseException) -> bool:
    return _driver(pooled).is_closed() or is_connection_lost(error)


def _driver(pooled: PoolProxiedConnection) -> asyncpg.Connection:
    driver: asyncpg.Connection = pooled.driver_connection  # set for as long as the connection is valid
    return driver


def _discard(
    engine: Engine, pooled: PoolProxiedConnection, error: BaseException, stale: Sequence[PoolProxiedConnection] = ()
) -> None:
    """Invalidate a connection in an unknown state (in a greenlet); if it was lost, the whole pool too."""
    lost = _lost(pooled, error)
    reason = error if isinstance(error, Exception) else None
    pooled.invalidate(reason)
    if lost:
        # What SQLAlchemy does on a disconnect: the server may have restarted, taking every pooled
        # connection with it, so all of them are replaced as they are next checked out.
        engine.pool._invalidate(pooled, reason, _checkin=False)
    _close_all(stale)  # returned after the pool's invalidation: replaced at their next checkout


def _close_all(connections: Sequence[PoolProxiedConnection]) -> None:
    for pooled in connections:
        pooled.close()
