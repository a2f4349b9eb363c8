"""`app.caching.store.TTLStore`: expiry from the time of storing, the oldest evicted first, bounded."""

from __future__ import annotations

from app.caching.store import TTLStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def store(*, maxsize: int = 100, ttl: float = 10.0) -> tuple[TTLStore[str, str], Clock]:
    clock = Clock()
    return TTLStore(maxsize=maxsize, ttl=ttl, clock=clock), clock


def test_an_entry_expires_ttl_after_it_was_stored_read_or_not() -> None:
    entries, clock = store(ttl=10)
    entries.put("k", "v")
    clock.now += 9.9
    assert entries.get("k", clock()) == "v"
    assert "k" in entries
    clock.now += 0.1
    assert entries.get("k", clock()) is None
    assert "k" not in entries
    assert len(entries) == 0


def test_storing_again_restarts_the_ttl() -> None:
    entries, clock = store(ttl=10)
    entries.put("k", "old")
    clock.now += 8
    entries.put("k", "new")
    clock.now += 8
    assert entries.get("k", clock()) == "new"


def test_a_full_store_evicts_its_oldest_entries_first() -> None:
    entries, clock = store(maxsize=16)
    for i in range(16):
        entries.put(f"k{i}", f"v{i}")
        clock.now += 0.01
    entries.put("k0", "again")  # stored again: now the newest
    entries.put("k16", "v16")
    assert len(entries) <= 16
    assert entries.get("k1", clock()) is None  # the oldest went
    assert entries.get("k0", clock()) == "again"
    assert entries.get("k16", clock()) == "v16"
    assert entries.get("k15", clock()) == "v15"
    for i in range(17, 1000):
        entries.put(f"k{i}", f"v{i}")
        assert len(entries) <= 16
    assert entries.get("k999", clock()) == "v999"


def test_expired_entries_are_swept_as_others_are_stored() -> None:
    entries, clock = store(ttl=10)
    for i in range(50):
        entries.put(f"old{i}", "v")
    clock.now += 11
    entries.put("new", "v")
    assert len(entries) == 1


def test_pop_and_clear() -> None:
    entries, clock = store()
    entries.put("a", "1")
    entries.put("b", "2")
    entries.pop("a")
    entries.pop("missing")
    assert entries.get("a", clock()) is None
    assert entries.get("b", clock()) == "2"
    entries.clear()
    assert len(entries) == 0
