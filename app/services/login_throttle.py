"""Login throttling: after `MAX_FAILURES` failed logins for one username within `WINDOW`, further attempts
for that username are refused (429) until the window that began with the first failure has passed.

Counted in the database on PostgreSQL, so every worker process sees the same count (one upsert per
failure, in a transaction of its own: the failed request's own unit of work is rolled back). SQLite
serves one process: the counts live in memory there.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from cachetools import TTLCache
from sqlalchemy import case, delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from app.models import LoginFailure
from app.models.base import utcnow

MAX_FAILURES = 10
WINDOW = timedelta(minutes=15)
# The column's length: longer names (and NULs, which PostgreSQL cannot store) are counted under a stored form.
_NAME_LENGTH = 150


def _counted_name(username: str) -> str:
    return username.replace("\x00", "")[:_NAME_LENGTH]


class LoginThrottle:
    """`engine`: count in its database (PostgreSQL); None: count in this process."""

    def __init__(self, engine: AsyncEngine | None) -> None:
        self._engine = engine
        self._memory: TTLCache[str, tuple[int, datetime]] = TTLCache(maxsize=100_000, ttl=WINDOW.total_seconds())

    def clear(self) -> None:
        self._memory.clear()

    async def _count(self, name: str) -> tuple[int, datetime] | None:
        if self._engine is None:
            return self._memory.get(name)
        statement = select(LoginFailure.failures, LoginFailure.window_started_at).where(LoginFailure.username == name)
        async with self._engine.connect() as conn:
            row = (await conn.execute(statement)).one_or_none()
        return None if row is None else (row.failures, row.window_started_at)

    async def retry_after(self, username: str, *, now: datetime | None = None) -> int | None:
        """Seconds until `username` may try again, or None when it may try now."""
        now = now or utcnow()
        count = await self._count(_counted_name(username))
        if count is None:
            return None
        failures, started = count
        ends = started + WINDOW
        if failures < MAX_FAILURES or ends <= now:
            return None
        return max(1, math.ceil((ends - now).total_seconds()))

    async def failed(self, username: str, *, now: datetime | None = None) -> None:
        now = now or utcnow()
        name = _counted_name(username)
        if self._engine is None:
            failures, started = self._memory.get(name) or (0, now)
            if started + WINDOW <= now:
                failures, started = 0, now
            self._memory[name] = (failures + 1, started)
            return
        expired = LoginFailure.window_started_at <= now - WINDOW
        upsert = insert(LoginFailure).values(username=name, failures=1, window_started_at=now)
        upsert = upsert.on_conflict_do_update(
            index_elements=[LoginFailure.username],
            set_={
                "failures": case((expired, 1), else_=LoginFailure.failures + 1),
                "window_started_at": case((expired, now), else_=LoginFailure.window_started_at),
            },
        )
        async with self._engine.begin() as conn:
            await conn.execute(upsert)
            # Windows that have passed are forgotten (indexed; failed logins are rare and slow anyway).
            await conn.execute(delete(LoginFailure).where(LoginFailure.window_started_at <= now - WINDOW))

    async def succeeded(self, username: str) -> None:
        name = _counted_name(username)
        if self._engine is None:
            self._memory.pop(name, None)
            return
        async with self._engine.begin() as conn:
            await conn.execute(delete(LoginFailure).where(LoginFailure.username == name))
