"""The entries of one TTL cache: one dict, each key's value with its expiry, oldest first.

`cachetools.TTLCache` kept an entry in three dicts (its values, their sizes, an ordered dict of links in
expiry order) plus a link object and a float: ~250 bytes of bookkeeping per entry, over 2.5 MiB for the
rows of a complete list of 11,000 plugins. Here an entry is its dict slot and an (expiry, value) tuple, about
half. Every entry lives `ttl` seconds from when it was stored, so storing order is expiry order: the dict's
own insertion order (a key stored again moves to the end) gives both the entries to expire and, when the
store is full, the oldest to evict. A read does not reorder (an entry expires `ttl` after it was stored,
read or not, as with `TTLCache`).

Entries leave the front of the dict in runs (a full store evicts an eighth of itself at once; expired entries
are swept at most once a second): iterating a dict from the front walks the slots its deletions left until it
is resized, so evicting one entry per store would walk them on every store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from itertools import islice
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

SWEEP_INTERVAL = 1.0  # seconds between sweeps of the expired entries, on store


class TTLStore(Generic[K, V]):
    """At most `maxsize` entries, each dropped `ttl` seconds after it was stored (None is never a value)."""

    __slots__ = ("_entries", "_next_sweep", "clock", "maxsize", "ttl")

    def __init__(self, *, maxsize: int, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.maxsize = maxsize
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[K, tuple[float, V]] = {}
        self._next_sweep = 0.0

    def get(self, key: K, now: float) -> V | None:
        """The value of `key` if stored and not expired at `now` (a clock reading, shared by a batch of reads)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= now:
            del self._entries[key]
            return None
        return entry[1]

    def __contains__(self, key: K) -> bool:
        entry = self._entries.get(key)
        return entry is not None and entry[0] > self.clock()

    def put(self, key: K, value: V) -> None:
        entries = self._entries
        now = self.clock()
        if now >= self._next_sweep:
            self._sweep(now)
        if entries.pop(key, None) is None and len(entries) >= self.maxsize:
            evicted = max(1, self.maxsize // 8)
            for oldest in list(islice(entries, evicted)):
                del entries[oldest]
        entries[key] = (now + self.ttl, value)

    def _sweep(self, now: float) -> None:
        """Drop the expired entries: a run at the front, as storing order is expiry order."""
        self._next_sweep = now + SWEEP_INTERVAL
        expired = []
        for key, (expires, _) in self._entries.items():
            if expires > now:
                break
            expired.append(key)
        for key in expired:
            del self._entries[key]

    def pop(self, key: K) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
