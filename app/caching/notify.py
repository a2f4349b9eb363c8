"""Cross-process cache invalidation over PostgreSQL LISTEN/NOTIFY.

NOTIFY is transactional: a message published inside the writing transaction is delivered at commit and
dropped on rollback. Each process keeps one dedicated asyncpg connection LISTENing (a pooled connection
would be recycled under it), probes it so a dead server is noticed quickly, reconnects with backoff,
and clears its caches after every (re)connect because messages sent while it was away are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy import ColumnElement, FromClause, Select, String, Text, bindparam, cast, func, literal_column, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from app import metrics
from app.caching import rules as cache_rules
from app.caching.registry import CacheRegistry, Invalidation

logger = logging.getLogger(__name__)

CHANNEL = "smarter_core_cache"
# How operators (and tests) tell the LISTEN connection apart in pg_stat_activity.
LISTENER_APPLICATION_NAME = "smarter-core-listener"
# PostgreSQL's payload limit is 8000 bytes; stay well under it.
MAX_PAYLOAD = 7000


def _payloads(invalidations: Sequence[Invalidation], origin: str) -> list[str]:
    """`{"origin": ..., "items": [...]}` messages, as many as PostgreSQL's payload limit needs."""
    batches: list[list[dict[str, Any]]] = []
    batch: list[dict[str, Any]] = []
    size = len(origin) + 32
    for item in invalidations:
        encoded = item.to_json()
        item_size = len(json.dumps(encoded)) + 1
        if batch and size + item_size > MAX_PAYLOAD:
            batches.append(batch)
            batch, size = [], len(origin) + 32
        batch.append(encoded)
        size += item_size
    if batch:
        batches.append(batch)
    return [json.dumps({"origin": origin, "items": items}) for items in batches]


_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


async def publish(session: AsyncSession, invalidations: Sequence[Invalidation], *, origin: str) -> None:
    for payload in _payloads(invalidations, origin):
        await session.execute(_NOTIFY, {"channel": CHANNEL, "payload": payload})


def announcing(statement: Select[Any], table: str, rows: FromClause, kind: cache_rules.Kind = "insert") -> Select[Any]:
    """`statement` publishing, as it runs, the keys of the rows it writes to `table` (those of `rows`, a
    data-modifying CTE's RETURNING): `{"origin", "table", "kind", "rows"}`, from which every process derives
    the invalidations with `cache_rules`. Delivered at the commit, like the messages of `publish`, without a
    round trip of its own; run it with `cache_rules.write` (which binds the origin).
    """
    keys = cache_rules.RULES[table].keys
    row = func.json_build_object(*(part for key in keys for part in (_constant(key), rows.c[key])))
    message = func.json_build_object(
        *(_constant("origin"), bindparam(cache_rules.ORIGIN_PARAM, type_=String())),
        *(_constant("table"), _constant(table), _constant("kind"), _constant(kind)),
        *(_constant("rows"), func.json_build_array(row)),
    )
    announced = func.pg_notify(_constant(CHANNEL), cast(message, Text)).label("cache_announced")
    return statement.add_columns(announced).execution_options(**cache_rules.writes(table, kind, announced=True))


def _constant(name: str) -> ColumnElement[str]:
    """A name written into the SQL: a bound parameter would be processed again on every execution."""
    if not name.isidentifier():
        raise ValueError(f"not a plain name: {name!r}")
    return literal_column(f"'{name}'", String())


def asyncpg_dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class CacheListener:
    """Applies other processes' invalidations to this process's caches."""

    def __init__(self, database_url: str, caches: CacheRegistry, *, probe_interval: float, backoff_max: float) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._caches = caches
        self._probe_interval = probe_interval
        self._backoff_max = backoff_max
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.received = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="cache-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.connected.clear()
        metrics.listener_state(False)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = json.loads(payload)
            origin = message["origin"]
            if "rows" in message:  # a statement's own announcement (`announcing`)
                items = cache_rules.invalidations_of(message["table"], message["kind"], message["rows"])
            else:
                items = [Invalidation.from_json(item) for item in message["items"]]
        except (ValueError, KeyError, TypeError):
            logger.warning("Ignoring a malformed cache invalidation message.")
            return
        if origin == self._caches.origin:
            return  # this process's own, applied when it committed
        self.received += 1
        self._caches.apply(items)

    async def _run(self) -> None:
        attempt = 0
        while True:
            conn: Any = None
            try:
                conn = await asyncpg.connect(
                    self._dsn,
                    timeout=self._probe_interval,
                    server_settings={"application_name": LISTENER_APPLICATION_NAME},
                )
                # A closed connection (server restart, pg_terminate_backend) is noticed at once, not at the
                # next probe: until then this process would keep serving entries it can no longer hear about.
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _conn, event=lost: event.set())
                await conn.add_listener(CHANNEL, self._on_notify)
                # Anything published while we were not listening is lost: start from empty caches.
                self._caches.clear()
                self.connected.set()
                metrics.listener_state(True)
                if attempt:
                    logger.info("Cache listener reconnected.")
                attempt = 0
                while True:
                    # `asyncio.timeout`, not `wait_for`: on Python 3.11, a `stop()` whose cancellation lands
                    # as `wait_for` times out comes back as a TimeoutError, which the loop swallowed and
                    # `stop()` then waited forever (a shutdown that never finished, seen under load).
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._probe_interval):
                            await lost.wait()
                    if lost.is_set():
                        raise ConnectionError("the LISTEN connection was closed")
                    async with asyncio.timeout(self._probe_interval):
                        await conn.fetchval("SELECT 1")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected.clear()
                metrics.listener_state(False, lost=True)
                delay = min(self._backoff_max, 0.2 * 2**attempt) * (0.5 + random.random() / 2)  # noqa: S311
                attempt += 1
                logger.warning("Cache listener lost its connection (%s); retrying in %.1fs.", type(exc).__name__, delay)
                # Entries may now miss invalidations; the TTL still bounds them, but drop them anyway.
                self._caches.clear()
                await asyncio.sleep(delay)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        async with asyncio.timeout(1):
                            await conn.close()
