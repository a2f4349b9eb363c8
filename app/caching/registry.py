"""TTL caches with single-flight loading and explicit invalidation (in-process, plus NOTIFY fan-out).

Rules this module enforces:
- concurrent misses on one key run the loader once; every waiter gets its result or its exception;
- errors and `None` results are never cached; a waiter's cancellation never cancels the shared load;
- a load that was overtaken by an invalidation returns its value to its waiters but does not store it,
  so a reader racing a writer cannot put the pre-write state back into the cache;
- every cache is bounded (`maxsize`) and expires entries (`ttl`), the backstop for missed messages.

Writes never touch caches directly: `app.caching.rules` derives what their rows make stale; the unit of work
(`app.db.commit`) publishes the invalidations with NOTIFY inside the transaction (PostgreSQL) and applies
them locally once the commit succeeded.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app import metrics
from app.caching.store import TTLStore

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# A tag groups entries that depend on one row, e.g. ("user", 5): every principal and snapshot of user 5.
Tag = tuple[str, int]
PENDING_KEY = "pending_invalidations"
# Invalidations a statement published itself (`cache_rules.writes(announced=True)`): applied after the commit,
# not published again.
ANNOUNCED_KEY = "announced_invalidations"
CACHES_KEY = "caches"


@dataclass(frozen=True, slots=True)
class Invalidation:
    """Drop `key` from cache `cache` (key=None: every entry of it), or (cache=None) every entry of every
    cache tagged with `tag`."""

    cache: str | None = None
    key: Hashable | None = None
    tag: Tag | None = None

    def to_json(self) -> dict[str, Any]:
        if self.tag is not None:
            return {"t": list(self.tag)}
        key = list(self.key) if isinstance(self.key, tuple) else self.key
        return {"c": self.cache, "k": key}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Invalidation:
        if "t" in data:
            kind, ident = data["t"]
            return cls(tag=(str(kind), int(ident)))
        key = data["k"]
        return cls(cache=str(data["c"]), key=tuple(key) if isinstance(key, list) else key)


class SingleFlightCache(Generic[K, V]):
    def __init__(
        self, name: str, *, maxsize: int, ttl: float, tags_of: Callable[[V], Iterable[Tag]] | None = None
    ) -> None:
        self.name = name
        self.ttl = ttl
        self._entries: TTLStore[K, V] | None = TTLStore(maxsize=maxsize, ttl=ttl) if ttl > 0 else None
        self._inflight: dict[K, asyncio.Future[V | None]] = {}
        # `get_many`'s loads in flight, by the keys they load: what every client asks at once is loaded once.
        self._batches: dict[tuple[K, ...], asyncio.Future[Mapping[K, V]]] = {}
        self._tags_of = tags_of
        self._tagged: dict[Tag, set[K]] = {}
        # The store drops expired and evicted entries silently, so their keys linger in `_tagged` until
        # pruned: pruning when the links outgrow twice the live ones keeps the index bounded by `maxsize`.
        self._links = 0
        self._min_links_budget = maxsize
        self._links_budget = maxsize
        self.loads = 0  # how many times a loader ran (tests and the benchmark read it)
        # Prometheus children bound once: a hit costs one `inc`, not a label look-up.
        self._count_hit = metrics.CACHE_HITS.labels(name).inc
        self._count_miss = metrics.CACHE_MISSES.labels(name).inc
        self._count_load = metrics.CACHE_LOADS.labels(name).inc
        # Counts invalidations: a load that started before one may have read what it dropped (`put_all`).
        self.generation = 0

    @property
    def keeps(self) -> bool:
        """Whether loaded values are kept (False with a TTL of 0: caches off, every value serves one load)."""
        return self._entries is not None

    def peek(self, key: K) -> V | None:
        if self._entries is None:
            return None
        value = self._entries.get(key, self._entries.clock())
        if value is None:
            self._count_miss()
            return None
        self._count_hit()
        return value

    def peek_many(self, keys: Iterable[K]) -> dict[K, V]:
        """The cached values of `keys` that are cached (a page's rows), read against one clock reading."""
        entries = self._entries
        found: dict[K, V] = {}
        if entries is None:
            return found
        asked = 0
        now = entries.clock()  # one clock reading for the whole page
        for key in keys:
            asked += 1
            value = entries.get(key, now)
            if value is not None:
                found[key] = value
        if found:
            self._count_hit(len(found))
        if asked > len(found):
            self._count_miss(asked - len(found))
        return found

    async def get(self, key: K, loader: Callable[[], Awaitable[V | None]]) -> V | None:
        value = self.peek(key)
        if value is not None:
            return value
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_task(self._load(key, loader))
            # Nobody may be left to read a failure if every waiter was cancelled: mark it retrieved.
            future.add_done_callback(_retrieve_exception)
            self._inflight[key] = future
        return await asyncio.shield(future)

    async def _load(self, key: K, loader: Callable[[], Awaitable[V | None]]) -> V | None:
        me = asyncio.current_task()
        self.loads += 1
        self._count_load()
        try:
            value = await loader()
        finally:
            still_current = self._inflight.get(key) is me
            if still_current:
                del self._inflight[key]
        if still_current and value is not None and self._entries is not None:
            self._entries.put(key, value)
            self._index(key, value)
        return value

    async def get_many(self, keys: Sequence[K], loader: Callable[[list[K]], Awaitable[Mapping[K, V]]]) -> dict[K, V]:
        """The values of `keys` (those that exist): cached ones as they are, the rest loaded by one `loader` call.

        Concurrent callers missing the same keys (a page's or a list's cold rows, asked by every client at once)
        share one load: each its own copy of every row would make a burst's peak memory that many times the
        rows'. The loaded values are stored unless an invalidation came in meanwhile (`put_all`), and a caller
        arriving after an invalidation starts a load of its own, never joins one that began before it.
        """
        found = self.peek_many(keys)
        missing = tuple(key for key in keys if key not in found)
        if missing:
            future = self._batches.get(missing)
            if future is None:
                future = asyncio.get_running_loop().create_task(self._load_many(missing, loader))
                future.add_done_callback(_retrieve_exception)
                self._batches[missing] = future
            found.update(await asyncio.shield(future))
        return found

    async def _load_many(
        self, keys: tuple[K, ...], loader: Callable[[list[K]], Awaitable[Mapping[K, V]]]
    ) -> Mapping[K, V]:
        me = asyncio.current_task()
        generation = self.generation
        try:
            values = await loader(list(keys))
        finally:
            if self._batches.get(keys) is me:
                del self._batches[keys]
        self.put_all(values, generation=generation)
        return values

    def _index(self, key: K, value: V) -> None:
        if self._tags_of is None:
            return
        for tag in self._tags_of(value):
            keys = self._tagged.setdefault(tag, set())
            if key not in keys:
                keys.add(key)
                self._links += 1
        if self._links > self._links_budget:
            self._prune_index()

    def _prune_index(self) -> None:
        entries = self._entries
        if entries is None:
            return
        pruned = {tag: {key for key in keys if key in entries} for tag, keys in self._tagged.items()}
        self._tagged = {tag: keys for tag, keys in pruned.items() if keys}
        self._links = sum(len(keys) for keys in self._tagged.values())
        self._links_budget = max(self._min_links_budget, 2 * self._links)

    def put_all(self, values: Mapping[K, V], *, generation: int) -> None:
        """Store values loaded outside `get` (a page's misses in one query), read after `generation` was taken.

        Nothing is stored if any invalidation came in between: the load may have read the rows it was about.
        """
        if self._entries is None or generation != self.generation:
            return
        for key, value in values.items():
            self._entries.put(key, value)
            self._index(key, value)

    def invalidate(self, key: K) -> None:
        self.generation += 1
        if self._entries is not None:
            self._entries.pop(key)
        # A load in flight started before this write: let it finish for its waiters, but not store.
        self._inflight.pop(key, None)
        self._batches.clear()

    def invalidate_tag(self, tag: Tag) -> None:
        self.generation += 1
        keys = self._tagged.pop(tag, set())
        self._links -= len(keys)
        for key in keys:
            self.invalidate(key)
        # An in-flight load's tags are known only once it returns, and it may have read the rows this
        # write changed: none of them may store (their waiters still get their values).
        self._inflight.clear()
        self._batches.clear()

    def clear(self) -> None:
        self.generation += 1
        if self._entries is not None:
            self._entries.clear()
        self._inflight.clear()
        self._batches.clear()
        self._tagged.clear()
        self._links = 0

    def __len__(self) -> int:
        return 0 if self._entries is None else len(self._entries)


def _retrieve_exception(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class CacheRegistry:
    """The named caches of one app instance (one per process)."""

    def __init__(self, *, ttl: float, maxsize: int) -> None:
        self.ttl = ttl
        self.maxsize = maxsize
        # Names this instance in the invalidations it publishes, so that it ignores its own when they come
        # back over LISTEN: it applied them at commit already, and a second copy would only drop entries
        # warmed in between.
        self.origin = secrets.token_hex(8)
        self._caches: dict[str, SingleFlightCache[Any, Any]] = {}

    def register(self, name: str, tags_of: Callable[[Any], Iterable[Tag]] | None = None) -> SingleFlightCache[Any, Any]:
        """The cache called `name`, created on first use (so each domain declares its own)."""
        cache = self._caches.get(name)
        if cache is None:
            cache = SingleFlightCache(name, maxsize=self.maxsize, ttl=self.ttl, tags_of=tags_of)
            self._caches[name] = cache
        return cache

    def apply(self, invalidations: Iterable[Invalidation]) -> None:
        for item in invalidations:
            if item.tag is not None:
                for cache in self._caches.values():
                    cache.invalidate_tag(item.tag)
            elif item.cache is not None and item.cache in self._caches:
                if item.key is None:  # a write whose rows are unknown (`cache_rules`)
                    self._caches[item.cache].clear()
                else:
                    self._caches[item.cache].invalidate(item.key)

    def clear(self) -> None:
        for cache in self._caches.values():
            cache.clear()


def invalidate_after_commit(
    session: AsyncSession, cache: str | None = None, key: Hashable | None = None, *, tag: Tag | None = None
) -> None:
    """Record that this unit of work changes a cached fact; `app.db.commit` publishes and applies it."""
    if (cache is None) == (tag is None):
        raise ValueError("Give either a cache and key, or a tag.")
    session.info.setdefault(PENDING_KEY, []).append(Invalidation(cache=cache, key=key, tag=tag))


def caches_of(session: AsyncSession) -> CacheRegistry:
    registry = session.info.get(CACHES_KEY)
    if not isinstance(registry, CacheRegistry):
        raise RuntimeError("This session was not made by the app's sessionmaker (it has no caches).")
    return registry
