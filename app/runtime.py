"""What one app instance owns while it runs: engine, sessions, caches, the listener, the schema gate."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app import db, reads
from app.caching.notify import CacheListener
from app.caching.registry import CacheRegistry
from app.config import Settings
from app.errors import ServiceUnavailable
from app.network import NetworkPolicy
from app.services.connections.pools import ConnectionPools
from app.services.login_throttle import LoginThrottle
from app.services.plugin_runtime.kinds import CallContext
from app.services.principals import LastUsedRecorder, Principal
from app.services.secrets.cipher import SecretCipher


@dataclass
class SchemaGate:
    """Refuses database work until the schema is at the newest migration (rechecked at most once a second)."""

    head: str
    ready: bool = False
    checked_at: float = field(default=0.0)

    async def check(self, engine: AsyncEngine) -> str | None:
        async with engine.connect() as conn:
            revision = await db.current_revision(conn)
        self.ready = revision == self.head
        self.checked_at = time.monotonic()
        return revision

    async def ensure(self, engine: AsyncEngine) -> None:
        if self.ready:
            return
        if time.monotonic() - self.checked_at >= 1.0:
            await self.check(engine)
        if not self.ready:
            raise ServiceUnavailable("The database schema is not at the newest migration; run `smarter-core migrate`.")


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    # The same pool without BEGIN/COMMIT round trips, for single-statement work (db.autocommit_engine).
    autocommit: AsyncEngine
    # The reads on every request's path: `reader.observers` see the statements it sends itself.
    reader: reads.Reader
    sessionmaker: async_sessionmaker[AsyncSession]
    # Sessions of units of work that write (on SQLite they take the write lock as they begin: db.writer_engine).
    writer_sessionmaker: async_sessionmaker[AsyncSession]
    caches: CacheRegistry
    last_used: LastUsedRecorder
    schema: SchemaGate
    listener: CacheListener | None = None
    login_throttle: LoginThrottle = field(default_factory=lambda: LoginThrottle(None))
    # The SQL engines and the HTTP client of SQL and API connections (plugin calls, `test/`).
    pools: ConnectionPools = field(default_factory=lambda: ConnectionPools(NetworkPolicy()))
    # The secrets' cipher, built once per process (services receive it: `app.services.secrets`).
    cipher: SecretCipher = field(default_factory=SecretCipher.unconfigured)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        engine = db.create_engine(settings)
        autocommit = db.autocommit_engine(engine)
        # The reads on every request's path (`app.reads`): on PostgreSQL, their share of the pool size.
        reader = reads.open_reader(autocommit, settings, size=db.read_pool_size(settings))
        caches = CacheRegistry(ttl=settings.cache_ttl, maxsize=settings.cache_maxsize)
        listener = None
        if not settings.is_sqlite:
            listener = CacheListener(
                settings.database_url,
                caches,
                probe_interval=settings.listen_probe_interval,
                backoff_max=settings.listen_backoff_max,
            )
        return cls(
            settings=settings,
            engine=engine,
            autocommit=autocommit,
            reader=reader,
            sessionmaker=db.create_sessionmaker(engine, caches),
            writer_sessionmaker=db.create_sessionmaker(db.writer_engine(engine), caches, reader),
            caches=caches,
            last_used=LastUsedRecorder(autocommit, settings.last_used_interval),
            schema=SchemaGate(head=db.migration_head()),
            listener=listener,
            # One process on SQLite: counted in memory; PostgreSQL serves many: counted in the database.
            login_throttle=LoginThrottle(None if settings.is_sqlite else engine),
            pools=ConnectionPools(
                NetworkPolicy.parse(settings.plugin_networks),
                own_database=make_url(settings.database_url).database if settings.is_sqlite else None,
            ),
            cipher=SecretCipher.for_settings(settings),
        )

    def call_context(self, principal: Principal) -> CallContext:
        """What a plugin call by `principal` may use of this instance (the REST routes and `/mcp` alike)."""
        return CallContext(
            principal=principal,
            engine=self.engine,
            reader=self.reader,
            caches=self.caches,
            settings=self.settings,
            pools=self.pools,
            cipher=self.cipher,
            sessionmaker=self.sessionmaker,
            writer_sessionmaker=self.writer_sessionmaker,
        )

    async def start(self) -> None:
        if self.listener is not None:
            self.listener.start()

    async def stop(self) -> None:
        if self.listener is not None:
            await self.listener.stop()
        await self.pools.close()
        await self.reader.close()
        await self.engine.dispose()
