"""The single-flight TTL cache: one load per key under concurrency, no cached errors, bounded size,
invalidations that beat in-flight loads, expiry; and through the app, one principal load for 100
concurrent requests with a cold key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest

from app.caching.registry import CacheRegistry, Invalidation, SingleFlightCache, Tag
from app.runtime import Runtime
from app.services import keys
from tests.auth.helpers import LIGHT_PROBE, capture_statements, drain_listener, make_key, principal_cache
from tests.support import World


class Loader:
    """A loader that counts its runs and blocks until released (so loads can be caught in flight)."""

    def __init__(self, value: str | None = "value", *, fail: bool = False) -> None:
        self.value = value
        self.fail = fail
        self.runs = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    def __call__(self) -> Awaitable[str | None]:
        return self._load()

    async def _load(self) -> str | None:
        self.runs += 1
        self.started.set()
        await self.release.wait()
        if self.fail:
            raise RuntimeError("the database went away")
        return self.value


def tags_of(value: str) -> list[Tag]:
    return [("user", int(value.split(":")[1]))] if ":" in value else []


def make_cache(*, maxsize: int = 100, ttl: float = 60.0) -> SingleFlightCache[str, str]:
    return SingleFlightCache("test", maxsize=maxsize, ttl=ttl, tags_of=tags_of)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_concurrent_misses_run_the_loader_once() -> None:
    cache = make_cache()
    loader = Loader()
    waiters = [asyncio.create_task(cache.get("k", loader)) for _ in range(100)]
    await loader.started.wait()
    await settle()
    assert loader.runs == 1
    loader.release.set()
    assert await asyncio.gather(*waiters) == ["value"] * 100
    assert (loader.runs, cache.loads, cache.peek("k")) == (1, 1, "value")
    assert await cache.get("k", Loader("other")) == "value"  # a hit: no load
    assert cache.loads == 1


async def test_errors_reach_every_waiter_and_are_not_cached() -> None:
    cache = make_cache()
    failing = Loader(fail=True)
    waiters = [asyncio.create_task(cache.get("k", failing)) for _ in range(10)]
    await failing.started.wait()
    failing.release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert failing.runs == 1
    assert cache.peek("k") is None
    retry = Loader()
    retry.release.set()
    assert await cache.get("k", retry) == "value"
    assert retry.runs == 1


async def test_none_is_not_cached() -> None:
    cache = make_cache()
    for expected_runs in (1, 2):
        loader = Loader(None)
        loader.release.set()
        assert await cache.get("k", loader) is None
        assert cache.loads == expected_runs
    assert len(cache) == 0


async def test_a_cancelled_waiter_does_not_cancel_the_shared_load() -> None:
    cache = make_cache()
    loader = Loader()
    first = asyncio.create_task(cache.get("k", loader))
    second = asyncio.create_task(cache.get("k", loader))
    await loader.started.wait()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    loader.release.set()
    assert await second == "value"
    assert loader.runs == 1
    assert cache.peek("k") == "value"


async def test_a_load_whose_waiters_all_left_still_completes_and_is_stored() -> None:
    cache = make_cache()
    loader = Loader()
    only = asyncio.create_task(cache.get("k", loader))
    await loader.started.wait()
    only.cancel()
    loader.release.set()
    await settle()
    assert cache.peek("k") == "value"
    # ... and a failure nobody waits for is not reported as "never retrieved" (warnings are errors here).
    failing = Loader(fail=True)
    gone = asyncio.create_task(cache.get("f", failing))
    await failing.started.wait()
    gone.cancel()
    failing.release.set()
    await settle()
    assert cache.peek("f") is None


async def test_maxsize_bounds_the_entries_and_the_tag_index() -> None:
    cache = make_cache(maxsize=10)
    for i in range(1_000):
        loader = Loader(f"v:{i % 7}")
        loader.release.set()
        await cache.get(f"k{i}", loader)
    assert len(cache) == 10
    # The tag index must not keep the evicted keys: it is bounded by the live entries.
    indexed = sum(len(keys) for keys in cache._tagged.values())
    assert indexed <= 10 * 4
    # Tag invalidation still finds the live entries.
    live_with_tag_3 = [k for k in (f"k{i}" for i in range(990, 1_000)) if cache.peek(k) == "v:3"]
    assert live_with_tag_3
    cache.invalidate_tag(("user", 3))
    assert all(cache.peek(k) is None for k in live_with_tag_3)


async def test_ttl_expiry() -> None:
    cache = make_cache(ttl=0.05)
    loader = Loader()
    loader.release.set()
    assert await cache.get("k", loader) == "value"
    assert await cache.get("k", loader) == "value"
    assert loader.runs == 1
    await asyncio.sleep(0.08)
    assert cache.peek("k") is None
    assert await cache.get("k", loader) == "value"
    assert loader.runs == 2


InvalidateFn = Callable[[SingleFlightCache[str, str]], None]
INVALIDATIONS: dict[str, InvalidateFn] = {
    "key": lambda cache: cache.invalidate("k"),
    "tag": lambda cache: cache.invalidate_tag(("user", 5)),
    "clear": lambda cache: cache.clear(),
}


@pytest.mark.parametrize("how", sorted(INVALIDATIONS))
async def test_an_invalidation_during_a_load_prevents_storing_the_stale_value(how: str) -> None:
    cache = make_cache()
    stale = Loader("before-the-write:5")
    waiter = asyncio.create_task(cache.get("k", stale))
    await stale.started.wait()
    INVALIDATIONS[how](cache)  # a write committed while the load was reading
    stale.release.set()
    assert await waiter == "before-the-write:5"  # its own waiter may have it (it asked before the write)...
    assert cache.peek("k") is None  # ...but it is not stored for anyone else
    fresh = Loader("after-the-write:5")
    fresh.release.set()
    assert await cache.get("k", fresh) == "after-the-write:5"
    assert cache.peek("k") == "after-the-write:5"


@pytest.mark.parametrize("how", sorted(INVALIDATIONS))
def test_values_loaded_outside_get_are_not_stored_after_an_invalidation(how: str) -> None:
    cache = make_cache()
    generation = cache.generation  # a page's misses are about to be read...
    INVALIDATIONS[how](cache)  # ...and a write commits meanwhile
    cache.put_all({"k": "stale:5"}, generation=generation)
    assert cache.peek("k") is None
    cache.put_all({"k": "fresh:5"}, generation=cache.generation)
    assert cache.peek("k") == "fresh:5"
    cache.invalidate_tag(("user", 5))  # stored values are indexed by their tags like any other
    assert cache.peek("k") is None


async def test_a_caller_arriving_after_an_invalidation_starts_a_new_load() -> None:
    cache = make_cache()
    stale = Loader("before:5")
    first = asyncio.create_task(cache.get("k", stale))
    await stale.started.wait()
    cache.invalidate("k")
    fresh = Loader("after:5")
    second = asyncio.create_task(cache.get("k", fresh))
    await fresh.started.wait()
    fresh.release.set()
    assert await second == "after:5"
    stale.release.set()  # the overtaken load finishes last and must not overwrite the fresh value
    assert await first == "before:5"
    assert cache.peek("k") == "after:5"


class BatchLoader:
    """A `get_many` loader: records the keys of each run, blocks until released, returns `<key>:5` per key."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.runs: list[list[str]] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, keys: list[str]) -> dict[str, str]:
        self.runs.append(keys)
        self.started.set()
        await self.release.wait()
        return {key: f"{self.prefix}{key}:5" for key in keys if key != "gone"}


async def test_concurrent_callers_missing_the_same_keys_share_one_load() -> None:
    cache = make_cache()
    cache.put_all({"a": "cached:5"}, generation=cache.generation)
    loader = BatchLoader("")
    waiters = [asyncio.create_task(cache.get_many(["a", "b", "c", "gone"], loader)) for _ in range(32)]
    await loader.started.wait()
    await settle()
    loader.release.set()
    expected = {"a": "cached:5", "b": "b:5", "c": "c:5"}  # a key the load did not find is left out
    assert await asyncio.gather(*waiters) == [expected] * 32
    assert loader.runs == [["b", "c", "gone"]]  # once, the missing keys only
    assert (cache.peek("b"), cache.peek("c")) == ("b:5", "c:5")
    assert await cache.get_many(["c", "b"], BatchLoader("unused")) == {"c": "c:5", "b": "b:5"}


@pytest.mark.parametrize("how", sorted(INVALIDATIONS))
async def test_a_shared_load_overtaken_by_an_invalidation_is_neither_stored_nor_joined(how: str) -> None:
    cache = make_cache()
    stale = BatchLoader("before-")
    first = asyncio.create_task(cache.get_many(["k"], stale))
    await stale.started.wait()
    INVALIDATIONS[how](cache)  # a write committed while the load was reading
    fresh = BatchLoader("after-")
    second = asyncio.create_task(cache.get_many(["k"], fresh))  # asks after the write: a load of its own
    await fresh.started.wait()
    fresh.release.set()
    assert await second == {"k": "after-k:5"}
    stale.release.set()
    assert await first == {"k": "before-k:5"}  # its own waiter may have it (it asked before the write)...
    assert cache.peek("k") == "after-k:5"  # ...but it overwrites nothing


async def test_tag_invalidation_drops_every_tagged_entry_of_every_cache() -> None:
    registry = CacheRegistry(ttl=60, maxsize=100)
    one = registry.register("one", tags_of=tags_of)
    two = registry.register("two", tags_of=tags_of)
    assert registry.register("one") is one
    for cache, key, value in ((one, "a", "x:1"), (one, "b", "x:2"), (two, "c", "x:1")):
        loader = Loader(value)
        loader.release.set()
        await cache.get(key, loader)
    registry.apply([Invalidation(tag=("user", 1))])
    assert (one.peek("a"), one.peek("b"), two.peek("c")) == (None, "x:2", None)
    registry.apply([Invalidation(cache="one", key="b"), Invalidation(cache="unknown", key="z")])
    assert one.peek("b") is None


def test_invalidation_messages_round_trip() -> None:
    for item in (
        Invalidation(tag=("account", 7)),
        Invalidation(cache="principal", key="ab" * 64),
        Invalidation(cache="plugin", key=(3, "name")),
    ):
        assert Invalidation.from_json(item.to_json()) == item


async def test_disabled_cache_still_shares_concurrent_loads() -> None:
    cache = make_cache(ttl=0)
    loader = Loader()
    waiters = [asyncio.create_task(cache.get("k", loader)) for _ in range(20)]
    await loader.started.wait()
    loader.release.set()
    assert await asyncio.gather(*waiters) == ["value"] * 20
    assert loader.runs == 1
    assert cache.peek("k") is None


async def test_100_concurrent_requests_with_a_cold_key_load_the_principal_once(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    actor = world["staff_b"]
    _, key = await make_key(runtime, actor.user, actor.profile, "cold_key")
    await drain_listener(runtime)
    cache = principal_cache(runtime)
    loads = cache.loads
    headers = {"Authorization": f"Token {key}"}
    with capture_statements(runtime) as statements:
        responses = await asyncio.gather(*(client.get(LIGHT_PROBE, headers=headers) for _ in range(100)))
    assert [r.status_code for r in responses] == [200] * 100
    assert cache.loads - loads == 1
    assert cache.peek(keys.digest_of(key)) is not None
    # One principal lookup (key, user and memberships in one statement), one lastUsedAt write: nothing per request.
    assert len(statements.matching(r"^select .* from api_key join app_user")) == 1
    assert statements.matching(r"from user_profile") == []
    assert len(statements.api_key_updates) == 1
