"""The reads on every request's path: a Core SELECT, run by asyncpg itself on PostgreSQL, on connections of its own.

A few statements run on nearly every request or cache miss: the principal behind a key, a plugin's
snapshot, a page of plugin ids. SQLAlchemy's execution layer (execution context, events, a greenlet hop
per call, result wrapping) and a pool's checkout and return cost more CPU than asyncpg spends on such a
small indexed SELECT. So a `Read` keeps its statement as SQLAlchemy Core, compiled once with the engine's
dialect, and the runtime's `Reader` runs it.

On PostgreSQL the `DriverReader` renders the statement with SQLAlchemy's documented
`SQLCompiler.construct_expanded_state` (the SQL with `$n` placeholders and, in order, its parameters and
the bind processors of their types), once per set of parameter names, and hands the SQL and the values to
asyncpg's `fetch` on a connection it keeps (`asyncpg.connect`, at most its share of the configured pool
size). The rows are the driver's values; its connections decode JSON with the codecs SQLAlchemy's dialect
installs, so they are what SQLAlchemy returns (`tests/test_reads.py` runs every `Read` both ways and
compares). On any other database (SQLite) the `EngineReader` executes the statement with SQLAlchemy.

Failures stay what the app expects of the database: asyncpg's errors are classified by `app.db_errors`
(connection loss and timeouts 503, refused values 422). A connection in an unknown state (lost, timed out,
cancelled mid-statement) is closed, never reused, and a lost one retires all the others (the server may
have restarted, taking them with it): each read after opens a fresh one. A connection idle longer than
`ping_after` seconds is pinged before it is used, as SQLAlchemy's pool does (`app.db`); one that fails
its ping retires the others and the read runs on a new one.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from pydantic_core import from_json
from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.compiler import ExpandedState, SQLCompiler

from app.config import Settings
from app.db import SERVER_SETTINGS
from app.db_errors import is_connection_lost

Row = Sequence[Any]
# Any SELECT, whatever its columns' types.
AnySelect = Select[*tuple[Any, ...]]
# Called with the SQL of a statement a reader sends.
StatementObserver = Callable[[str], None]


class Read:
    """One SELECT, compiled once per dialect; `rows` and `first` run it with a reader."""

    __slots__ = ("_compiled", "_templates", "statement")

    def __init__(self, statement: AnySelect) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, str], SQLCompiler] = {}
        self._templates: dict[tuple[str, str, tuple[str, ...]], _Template | None] = {}

    def render(self, dialect: Dialect, values: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """The SQL for `dialect` and its positional arguments, converted as SQLAlchemy converts them."""
        key = (dialect.name, dialect.driver, tuple(values))
        template = self._templates.get(key, _UNKNOWN)
        if template is _UNKNOWN:
            template = self._templates[key] = _Template.of(self._compiler(dialect), values)
        if template is not None:
            return template.sql, template.arguments(values)
        # Parameters rendered at execution time (an expanding IN): the SQL depends on the values.
        compiled = self._compiler(dialect)
        return _expanded(compiled, compiled.construct_expanded_state(values))

    def _compiler(self, dialect: Dialect) -> SQLCompiler:
        key = (dialect.name, dialect.driver)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = statement_compiler(self.statement, dialect)
            self._compiled[key] = compiled
        return compiled

    async def rows(self, reader: Reader, values: Mapping[str, Any]) -> Sequence[Row]:
        return await reader.rows(self, values)

    async def first(self, reader: Reader, values: Mapping[str, Any]) -> Row | None:
        rows = await reader.rows(self, values)
        return rows[0] if rows else None


def statement_compiler(statement: AnySelect, dialect: Dialect) -> SQLCompiler:
    compiled = statement.compile(dialect=dialect)
    if not isinstance(compiled, SQLCompiler):  # a SELECT compiles with the dialect's SQL compiler
        raise TypeError(f"{type(compiled).__name__} is not a SQL compiler.")
    return compiled


def _expanded(compiled: SQLCompiler, state: ExpandedState) -> tuple[str, list[Any]]:
    parameters, processors = state.parameters, _processors(compiled, state)
    arguments = []
    for name in state.positiontup or ():
        process = processors.get(name)
        arguments.append(parameters[name] if process is None else process(parameters[name]))
    return state.statement, arguments


class _Slot:
    """Stands for a caller's value while a template is rendered: where it lands in the positional order."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


_UNKNOWN: Any = object()


@dataclass(frozen=True, slots=True)
class _Template:
    """A statement's SQL and the recipe of its arguments, for one set of parameter names.

    Rendered once by `construct_expanded_state` with a `_Slot` for each caller value, so that each call only
    places its values (with SQLAlchemy's bind processor of each, if any) among the statement's constants.
    """

    sql: str
    # In positional order: (the caller's name, its processor) or (None, the constant, already processed).
    parameters: tuple[tuple[str | None, Any], ...]

    @classmethod
    def of(cls, compiled: SQLCompiler, values: Mapping[str, Any]) -> _Template | None:
        if "POSTCOMPILE" in compiled.string:
            return None  # rendered at execution time, from the values
        state = compiled.construct_expanded_state({name: _Slot(name) for name in values})
        processors = _processors(compiled, state)
        parameters: list[tuple[str | None, Any]] = []
        for name in state.positiontup or ():
            value, process = state.parameters[name], processors.get(name)
            if isinstance(value, _Slot):
                parameters.append((value.name, process))
            else:
                parameters.append((None, value if process is None else process(value)))
        return cls(sql=state.statement, parameters=tuple(parameters))

    def arguments(self, values: Mapping[str, Any]) -> list[Any]:
        arguments = []
        for name, detail in self.parameters:
            if name is None:
                arguments.append(detail)
            elif detail is None:
                arguments.append(values[name])
            else:
                arguments.append(detail(values[name]))
        return arguments


def _processors(compiled: SQLCompiler, state: ExpandedState) -> dict[str, Callable[[Any], Any]]:
    """Every parameter's bind processor by name, as SQLAlchemy's execution applies them: `state.processors`
    holds the expanded parameters' only, so a JSON value, say, is serialised by its type's from the binds."""
    dialect = compiled.dialect
    found: dict[str, Callable[[Any], Any]] = {}
    for name, bind in compiled.binds.items():
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            found[name] = process
    return {**found, **state.processors}


class Reader(ABC):
    """How the hot reads reach the database; owned by the runtime. `observers` see every statement sent."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.observers: list[StatementObserver] = []

    @abstractmethod
    async def rows(self, read: Read, values: Mapping[str, Any]) -> Sequence[Row]: ...

    @abstractmethod
    async def close(self) -> None:
        """Close the reader's own connections, if it has any."""


class EngineReader(Reader):
    """SQLAlchemy executes the statement (SQLite); its engine events report the statements."""

    async def close(self) -> None:
        """Its connections are the engine's, disposed with it."""

    async def rows(self, read: Read, values: Mapping[str, Any]) -> Sequence[Row]:
        async with self.engine.connect() as connection:
            return (await connection.execute(read.statement, values)).all()


class DriverReader(Reader):
    """asyncpg runs the statement on a connection of the reader's own, at most `size` of them.

    A connection is lent for one statement and kept between statements: a list pop, where a pool's
    checkout and return (SQLAlchemy's or asyncpg's) cost about as much CPU as the statement itself. None is
    opened before a read needs it, so a server that is down does not stop the service from starting; a read
    waits at most `acquire_timeout` seconds for a free one when all are lent.
    """

    def __init__(self, engine: AsyncEngine, settings: Settings, *, size: int) -> None:
        super().__init__(engine)
        self.size = size
        self.ping_after = settings.db_ping_after_idle
        self.acquire_timeout = settings.db_pool_timeout  # as long as a session waits for SQLAlchemy's pool
        url = engine.url
        self._connect: dict[str, Any] = {
            **url.translate_connect_args(username="user"),
            **url.query,  # ssl and the like, as asyncpg names them
            "timeout": settings.db_connect_timeout,
            "command_timeout": settings.db_command_timeout,
            "server_settings": dict(SERVER_SETTINGS),
        }
        self._slots = asyncio.Semaphore(size)  # connections lent or being opened
        self._idle: list[tuple[asyncpg.Connection, float]] = []  # a stack: the warmest on top
        # Bumped when the server was lost or the reader closed: connections lent before then are not kept.
        self._generation = 0
        self._connections = 0
        self._closed = False

    @property
    def connections(self) -> int:
        """The connections open now, idle or lent (at most `size`)."""
        return self._connections

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def rows(self, read: Read, values: Mapping[str, Any]) -> Sequence[Row]:
        sql, arguments = read.render(self.engine.dialect, values)
        for observe in self.observers:
            observe(sql)
        await self._take_slot()
        try:
            connection = await self._lend()
            generation = self._generation
            try:
                records: Sequence[Row] = await connection.fetch(sql, *arguments)
            except BaseException as error:
                if isinstance(error, asyncpg.PostgresError) and not _lost(connection, error):
                    self._give_back(connection, generation)  # a plain SQL error: the connection is fine
                else:
                    self._discard(connection, error)
                raise
            self._give_back(connection, generation)
            return records
        finally:
            self._slots.release()

    async def _take_slot(self) -> None:
        if self._closed:
            raise asyncpg.InterfaceError("The reader is closed.")
        if self._slots.locked():
            async with asyncio.timeout(self.acquire_timeout):  # a TimeoutError: a 503, as the pool's
                await self._slots.acquire()
        else:
            await self._slots.acquire()

    async def _lend(self) -> asyncpg.Connection:
        while self._idle:
            connection, since = self._idle.pop()
            if time.monotonic() - since < self.ping_after:
                return connection  # used a moment ago
            try:
                await connection.execute(";")
            except BaseException as error:
                self._discard(connection, error)
                if not isinstance(error, Exception):
                    raise
                break  # dead while idle, as its siblings likely are (`_discard`): a new connection
            return connection
        return await self._open()

    async def _open(self) -> asyncpg.Connection:
        connection = await asyncpg.connect(**self._connect)
        self._connections += 1
        try:
            await _json_codecs(connection)
        except BaseException:
            self._terminate(connection)
            raise
        return connection

    def _terminate(self, connection: asyncpg.Connection) -> None:
        self._connections -= 1
        connection.terminate()

    def _give_back(self, connection: asyncpg.Connection, generation: int) -> None:
        if generation == self._generation and not connection.is_closed():
            self._idle.append((connection, time.monotonic()))
        else:
            self._terminate(connection)

    def _discard(self, connection: asyncpg.Connection, error: BaseException) -> None:
        """Drop a connection in an unknown state (lost, timed out or cancelled mid-statement).

        A lost one retires every other too: the server may have restarted, taking them all with it.
        """
        if _lost(connection, error):
            self._retire()
        self._terminate(connection)

    def _retire(self) -> None:
        """Keep none of the connections open now: the idle ones are closed, the lent ones when given back."""
        self._generation += 1
        idle, self._idle = self._idle, []
        for connection, _since in idle:
            self._terminate(connection)

    async def close(self) -> None:
        """Close the idle connections; lent ones close when their statement ends. No read runs after."""
        self._closed = True
        idle, self._idle = self._idle, []
        self._generation += 1
        for connection, _since in idle:
            self._connections -= 1
            try:
                await connection.close(timeout=2.0)
            except Exception:
                connection.terminate()


def _lost(connection: asyncpg.Connection, error: BaseException) -> bool:
    return connection.is_closed() or is_connection_lost(error)


async def _json_codecs(connection: asyncpg.Connection) -> None:
    """JSON and JSONB as SQLAlchemy's asyncpg dialect installs them (with the engine's deserializer, `app.db`)."""
    await connection.set_type_codec("json", encoder=str.encode, decoder=from_json, schema="pg_catalog", format="binary")
    await connection.set_type_codec(
        "jsonb",
        encoder=lambda value: b"\x01" + value.encode(),  # JSONB's binary format: a version byte, then the text
        decoder=lambda data: from_json(data[1:]),
        schema="pg_catalog",
        format="binary",
    )


def open_reader(engine: AsyncEngine, settings: Settings, *, size: int) -> Reader:
    """The reader for `engine`: up to `size` asyncpg connections of its own on PostgreSQL, the engine elsewhere."""
    if engine.dialect.driver != "asyncpg":
        return EngineReader(engine)
    return DriverReader(engine, settings, size=size)
