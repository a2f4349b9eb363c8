"""Engine and session factories, the unit-of-work commit, and the migration-head check."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pydantic_core import from_json
from sqlalchemy import event, exc, text
from sqlalchemy.engine import AdaptedConnection, Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.caching import notify as cache_notify
from app.caching.registry import ANNOUNCED_KEY, CACHES_KEY, PENDING_KEY, CacheRegistry, Invalidation
from app.caching.rules import READER_KEY, TrackedSession, autocommits
from app.config import PROJECT_ROOT, Settings

if TYPE_CHECKING:
    from alembic.config import Config

    from app.reads import Reader

ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"
MIGRATIONS = PROJECT_ROOT / "migrations"


# DEBUG lines that print stored values (key digests, password hashes): SQLAlchemy's result rows and
# aiosqlite's calls with their arguments. Dropped even when an operator turns DEBUG on; SQL echo at INFO
# still shows the statements, with their parameters hidden (`hide_parameters`).
_VALUE_DUMPING_LOGGERS = ("sqlalchemy.engine.Engine", "aiosqlite")


def _drop_debug(record: logging.LogRecord) -> bool:
    return record.levelno > logging.DEBUG


def ensure_sqlite_directory(database_url: str) -> None:
    """Create the directory of a SQLite file URL: SQLite creates a missing file, never a missing directory.

    Every engine that may be the first to open the file calls it: the app's, and the migrations' (on a fresh
    checkout, `make run` migrates `./var/smarter-core.sqlite3` before anything else exists).
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


# Every connection the service opens says who it is (`pg_stat_activity`), the hot reads' too (`app.reads`).
SERVER_SETTINGS = {"application_name": "smarter-core"}


def create_engine(settings: Settings) -> AsyncEngine:
    for name in _VALUE_DUMPING_LOGGERS:
        logging.getLogger(name).addFilter(_drop_debug)  # idempotent: a filter is added once
    ensure_sqlite_directory(settings.database_url)
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(
            url,
            # SQLite's busy handler waits as long for another process's writer as a pool checkout may.
            connect_args={"timeout": settings.db_pool_timeout},
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            pool_pre_ping=True,
            hide_parameters=True,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        _WriteTurns(settings.db_pool_timeout).listen(engine)
        return engine
    engine = create_async_engine(
        url,
        # The overflow is part of the pool's size, not connections closed as they are returned: under a load
        # between the two (32 concurrent writes: sessions hold their connection across the statement's commit),
        # SQLAlchemy's overflow opened and closed a connection on every ~15th checkout, each a new server
        # backend, a connect and a re-prepared statement. Connections are still opened only when needed.
        pool_size=session_pool_size(settings),
        max_overflow=0,
        pool_timeout=settings.db_pool_timeout,
        pool_pre_ping=False,  # replaced by _ping_idle_connections
        hide_parameters=True,
        # JSON columns (annotations, parts) decode on every row read; pydantic-core's parser is the faster.
        json_deserializer=from_json,
        connect_args={
            "timeout": settings.db_connect_timeout,
            "command_timeout": settings.db_command_timeout,
            "server_settings": SERVER_SETTINGS,
        },
    )
    _ping_idle_connections(engine, settings.db_ping_after_idle)
    return engine


def read_pool_size(settings: Settings) -> int:
    """The hot reads' share of `db_pool_size` on PostgreSQL, in an asyncpg pool of their own (`app.reads`).

    Half, at least one; the sessions' pool keeps the rest (at least one) and the whole overflow, so the
    service opens no more than `db_pool_size + db_max_overflow` connections (two when the size is one).
    """
    return max(1, settings.db_pool_size // 2)


def session_pool_size(settings: Settings) -> int:
    """The sessions' pool on PostgreSQL: the rest of `db_pool_size` and the whole overflow, every connection
    kept once opened (as the reads keep theirs)."""
    return max(1, settings.db_pool_size - read_pool_size(settings)) + settings.db_max_overflow


def _ping_idle_connections(engine: AsyncEngine, idle_seconds: float) -> None:
    """The pool's pre-ping, for connections idle longer than `idle_seconds` (HikariCP's bypass window).

    `pool_pre_ping` pings on every checkout, and SQLAlchemy's asyncpg ping takes three round trips
    (BEGIN, `;`, ROLLBACK): more than the work of a small write. A connection returned a moment ago is
    alive as far as a ping could tell; one that sat idle (a restarted or failed-over server, a firewall's
    idle timeout) is pinged with the dialect's own `do_ping`, in the pool's documented `checkout` event,
    and a failed ping refreshes the whole pool (`InvalidatePoolError`), as `pool_pre_ping` does. A
    connection that dies within the window fails its statement: a 503, and SQLAlchemy's disconnect
    handling refreshes the pool then.
    """
    pool = engine.sync_engine.pool
    dialect = engine.dialect

    def returned(_dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        # `record.info` is cleared when its connection is replaced: a new connection has no stamp.
        returned_at = record.info.get(_RETURNED_AT)
        if returned_at is None or time.monotonic() - returned_at < idle_seconds:
            return
        try:
            alive = dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise exc.InvalidatePoolError() from error
        if not alive:
            raise exc.InvalidatePoolError()

    event.listen(pool, "checkin", returned)
    event.listen(pool, "checkout", checked_out)


_RETURNED_AT = "smarter_core_returned_at"


def autocommit_engine(engine: AsyncEngine) -> AsyncEngine:
    """The engine (same pool) for work of one statement: cache loads, `lastUsedAt` stamps.

    On PostgreSQL, asyncpg wraps every transaction in BEGIN and ROLLBACK/COMMIT, two of the four round
    trips of a cached lookup's miss (ping, BEGIN, SELECT, ROLLBACK); a single statement is atomic without
    them. SQLite keeps the engine as it is: its connections already run in driver autocommit (see
    `_sqlite_pragmas`), and resetting the isolation level on return would undo that.
    """
    if engine.dialect.name == "sqlite":
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy, not the driver's legacy mode, emits BEGIN (see _WriteTurns): SAVEPOINTs then work.
    dbapi_connection.isolation_level = None
    # Foreign keys are off by default in SQLite; WAL lets readers run beside the single writer.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# --- SQLite: one writer at a time ----------------------------------------------------------------------

WRITER_OPTION = "smarter_core_writer"
_HOLDS_TURN = "smarter_core_holds_write_turn"


def writer_engine(engine: AsyncEngine) -> AsyncEngine:
    """The engine for units of work that write: requests that change something, the CLI's commands.

    On SQLite their transactions take the write lock as they begin (`_WriteTurns`); on PostgreSQL, where
    row locks and constraints order concurrent writers, it is the engine itself.
    """
    if engine.dialect.name != "sqlite":
        return engine
    return engine.execution_options(**{WRITER_OPTION: True})


class _WriteTurns:
    """SQLite has one write lock per database; writers take it up front and, in this process, in turn.

    A deferred `BEGIN` that reads first and writes later must upgrade its read to the write lock; when
    another writer holds it or committed since the read, SQLite answers BUSY at once, whatever the busy
    timeout (waiting could not make the read current). So a writer's transaction (an engine from
    `writer_engine`) begins with `BEGIN IMMEDIATE`, after waiting its turn on an asyncio lock: the process's
    writers queue in arrival order without polling SQLite, and one that waited longer than
    `db_pool_timeout` fails as a pool timeout does (a 503). A writer of another process (the CLI) is waited
    for by SQLite's busy handler, as long. Readers begin deferred and, with WAL, never wait for a writer.
    """

    def __init__(self, timeout: float) -> None:
        self._lock = asyncio.Lock()
        self._timeout = timeout

    def listen(self, engine: AsyncEngine) -> None:
        target = engine.sync_engine
        event.listen(target, "begin", self._begin)
        # Fired just before the COMMIT or ROLLBACK is sent: the next writer's BEGIN IMMEDIATE then waits
        # in SQLite's busy handler for the instant it takes to finish.
        event.listen(target, "commit", self._end)
        event.listen(target, "rollback", self._end)
        # A connection returned or discarded without either (a cancelled request) gives its turn back too.
        event.listen(target.pool, "checkin", self._returned)
        event.listen(target.pool, "invalidate", self._returned)

    def _begin(self, connection: Connection) -> None:
        if not connection.get_execution_options().get(WRITER_OPTION):
            connection.exec_driver_sql("BEGIN")
            return
        # The documented way to await from an engine event: the adapted driver connection runs the awaitable.
        driver = cast(AdaptedConnection, connection.connection.dbapi_connection)
        driver.run_async(lambda _aiosqlite: self._take_turn())
        connection.info[_HOLDS_TURN] = True
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            self._give_back(connection.info)
            raise

    async def _take_turn(self) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await self._lock.acquire()
        except TimeoutError:
            raise exc.TimeoutError(f"Waited over {self._timeout:g} s for the SQLite write lock.") from None

    def _end(self, connection: Connection) -> None:
        self._give_back(connection.info)

    def _returned(self, _dbapi_connection: Any, record: Any, *_: Any) -> None:
        if record is not None:
            self._give_back(record.info)

    def _give_back(self, info: dict[Any, Any]) -> None:
        if info.pop(_HOLDS_TURN, False):
            self._lock.release()


def create_sessionmaker(
    engine: AsyncEngine, caches: CacheRegistry, reader: Reader | None = None
) -> async_sessionmaker[AsyncSession]:
    # Every session carries the process's caches so services can record invalidations on it.
    # Their writes queue the invalidations they call for (`cache_rules`), which `commit` publishes and applies.
    # With the runtime's `reader`, a unit of work of one statement may run on it (`cache_rules.write_alone`).
    info: dict[str, Any] = {CACHES_KEY: caches}
    if reader is not None:
        info[READER_KEY] = reader
    return async_sessionmaker(engine, expire_on_commit=False, info=info, sync_session_class=TrackedSession)


async def commit(session: AsyncSession) -> None:
    """The one commit point of a unit of work (a request, a CLI command).

    Invalidations recorded during the work are published with NOTIFY inside the transaction (so other
    processes hear of them only if the commit succeeds) and applied to this process's caches after it;
    those a statement announced itself (`cache_notify.announcing`) are only applied.
    """
    if session.new or session.dirty or session.deleted:  # else flushing does nothing, for a greenlet hop
        await session.flush()  # what is still unwritten queues its invalidations too (`cache_rules`)
    pending: list[Invalidation] = session.info.pop(PENDING_KEY, [])
    announced: list[Invalidation] = session.info.pop(ANNOUNCED_KEY, [])
    if not pending and not announced and not session.in_transaction():
        return  # nothing read or written (a request served from the caches): committing costs ~100 µs of CPU
    registry = session.info.get(CACHES_KEY)
    if pending and dialect_of(session) == "postgresql":
        # A session without the process's caches (a script's) still tells every process, under no origin.
        origin = registry.origin if isinstance(registry, CacheRegistry) else ""
        await cache_notify.publish(session, pending, origin=origin)
    await session.commit()
    if isinstance(registry, CacheRegistry):
        registry.apply([*pending, *announced])


AUTOCOMMIT = "AUTOCOMMIT"


async def single_statement(session: AsyncSession) -> None:
    """The unit of work's next statement may be all it writes, and is atomic by itself (a create in one
    statement): on PostgreSQL, a session that has not begun runs it in autocommit, without the BEGIN and
    COMMIT round trips (two of such a unit of work's three). Its writes are committed as it returns; the
    caller writes nothing more, unless it wrote nothing (then `transactional` first).
    """
    if dialect_of(session) == "postgresql" and not session.in_transaction():
        await session.connection(execution_options={"isolation_level": AUTOCOMMIT})


async def transactional(session: AsyncSession) -> None:
    """What the unit of work runs next must be atomic: a connection left in autocommit by `single_statement`
    (whose statement wrote nothing) is given back, so the next statement begins a transaction."""
    if not session.in_transaction():
        return
    if autocommits(await session.connection()):
        await session.rollback()  # nothing to undo: the connection goes back to the pool


def holds_anything(session: AsyncSession) -> bool:
    """Whether closing `session` has anything to do: a transaction (a connection) or objects to detach.

    A request served from the caches never uses its session: closing it anyway costs a greenlet hop.
    """
    return session.in_transaction() or bool(session.identity_map) or bool(session.new)


def dialect_of(session: AsyncSession) -> str:
    bind = session.bind
    if bind is None:
        raise RuntimeError("The session is not bound to an engine.")
    return bind.dialect.name


def alembic_config(database_url: str | None = None) -> Config:
    from alembic.config import Config  # the migrating commands' (a serving worker never imports Alembic)

    # Today's stdout: `Config`'s default is the one of the moment Alembic was first imported.
    config = Config(str(ALEMBIC_INI), stdout=sys.stdout)
    config.set_main_option("script_location", str(MIGRATIONS))
    if database_url is not None:
        config.attributes["database_url"] = database_url
    return config


# --- start-up on PostgreSQL: one process migrates and bootstraps, the others wait, then find it done ---

# An application-wide advisory lock key ("smarter" as a big-endian integer).
STARTUP_LOCK_KEY = int.from_bytes(b"smarter", "big")


@contextlib.contextmanager
def migration_lock(connection: Connection) -> Iterator[None]:
    """Hold the start-up lock around a migration run on `connection` (Alembic's, in `migrations/env.py`).

    A session-level lock, taken and committed before Alembic begins its transaction: processes started at
    once migrate one after the other, and the later ones find the schema at head and change nothing.
    """
    if connection.dialect.name != "postgresql":
        yield
        return
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": STARTUP_LOCK_KEY})
    connection.commit()
    try:
        yield
    finally:
        with contextlib.suppress(Exception):  # closing the connection releases it anyway
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": STARTUP_LOCK_KEY})
            connection.commit()


async def lock_for_startup(session: AsyncSession) -> None:
    """Wait for other processes' migrations and first-start bootstrap (PostgreSQL); held until the commit."""
    if dialect_of(session) == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": STARTUP_LOCK_KEY})


def display_url(database_url: str) -> str:
    """The URL as messages may show it: without its password."""
    return make_url(database_url).render_as_string(hide_password=True)


def _revisions(script: Path) -> tuple[str, tuple[str, ...]]:
    """A migration script's `revision` and the revisions it follows (its `down_revision`)."""
    values: dict[str, Any] = {}
    for node in ast.parse(script.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                    values[target.id] = ast.literal_eval(node.value)
    down = values.get("down_revision")
    return str(values["revision"]), (() if down is None else (down,) if isinstance(down, str) else tuple(down))


def migration_head() -> str:
    """The revision no migration follows, read from the scripts' `revision` and `down_revision`, as Alembic
    reads them: a serving worker checks the schema against it without importing Alembic (with its templates
    and their highlighter, a tenth of an idle worker's memory). The migration tests hold it to Alembic's head.
    """
    scripts = [_revisions(path) for path in sorted((MIGRATIONS / "versions").glob("*.py"))]
    followed = {down for _, downs in scripts for down in downs}
    heads = [revision for revision, _ in scripts if revision not in followed]
    if len(heads) != 1:
        raise RuntimeError(f"Expected one migration head, found {heads}.")
    return heads[0]


async def current_revision(connection: AsyncConnection) -> str | None:
    """The schema's revision, or None when Alembic has never run on this database."""
    try:
        result = await connection.execute(text("SELECT version_num FROM alembic_version"))
    except Exception as exc:  # the table is missing: a database Alembic never touched
        if _is_missing_table(exc):
            return None
        raise
    return result.scalar_one_or_none()


def _is_missing_table(exc: Exception) -> bool:
    orig = getattr(exc, "orig", None)
    message = str(orig or exc).lower()
    return "no such table: alembic_version" in message or 'relation "alembic_version" does not exist' in message
