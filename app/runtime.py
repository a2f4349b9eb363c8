"""What one app instance owns while it runs: engine, sessions, caches, the listener, the schema gate."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app import db, reads
from app.config import Settings
from app.errors import ServiceUnavailable
from app.services.cache import CacheRegistry
from app.services.cache_notify import CacheListener
from app.services.principals import LastUsedRecorder


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
    sessionmaker: async_sessionmaker[AsyncSession]
    # Sessions of units of work that write (on SQLite they take the write lock as they begin: db.writer_engine).
    writer_sessionmaker: async_sessionmaker[AsyncSession]
    caches: CacheRegistry
    last_used: LastUsedRecorder
    schema: SchemaGate
    listener: CacheListener | None = None

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        engine = db.create_engine(settings)
        autocommit = db.autocommit_engine(engine)
        # Half the pool at most, for the reads on every request's path (`app.reads`); the rest for sessions.
        reads.open_lane(engine, size=settings.db_pool_size // 2, ping_after=settings.db_ping_after_idle)
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
            sessionmaker=db.create_sessionmaker(engine, caches),
            writer_sessionmaker=db.create_sessionmaker(db.writer_engine(engine), caches),
            caches=caches,
            last_used=LastUsedRecorder(autocommit, settings.last_used_interval),
            schema=SchemaGate(head=db.migration_head()),
            listener=listener,
        )

    async def start(self) -> None:
        if self.listener is not None:
            self.listener.start()

    async def stop(self) -> None:
        if self.listener is not None:
            await self.listener.stop()
        await reads.close_lane(self.engine)
        await self.engine.dispose()
