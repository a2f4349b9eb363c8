"""Prometheus metrics: what they are, the `/metrics` endpoint, and prometheus-client's multiprocess mode.

Labels name routes (templates), methods, statuses and caches only: never a tenant, a user or a key, so the
number of series is bounded by the code, not by the data.

With several workers, `smarter-core serve` points `PROMETHEUS_MULTIPROC_DIR` at a clean directory before
they start (`prepare_multiprocess`): each worker then writes its values to files there and `/metrics`, in
whichever worker answers, adds up every worker's. prometheus-client picks its storage when it is first
imported, so the variable must be set before a worker imports this module.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PREFIX = "smarter_core"

REQUESTS = Counter(
    f"{PREFIX}_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    f"{PREFIX}_http_request_duration_seconds",
    "Time from the request's arrival to its response's end, by route template and method.",
    ["route", "method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
CACHE_HITS = Counter(f"{PREFIX}_cache_hits", "Cache look-ups answered from the cache.", ["cache"])
CACHE_MISSES = Counter(f"{PREFIX}_cache_misses", "Cache look-ups that found nothing.", ["cache"])
CACHE_LOADS = Counter(f"{PREFIX}_cache_loads", "Loader runs (single-flight: one per key at a time).", ["cache"])
POOL_IN_USE = Gauge(
    f"{PREFIX}_db_pool_connections_in_use",
    "Database connections checked out of the pool (summed over live workers).",
    multiprocess_mode="livesum",
)
POOL_TIMEOUTS = Counter(
    f"{PREFIX}_db_pool_wait_timeouts",
    "Waits for a pooled connection that outlasted SMARTER_CORE_DB_POOL_TIMEOUT (503).",
)
LISTENER_CONNECTED = Gauge(
    f"{PREFIX}_cache_listener_connected",
    "Workers whose LISTEN connection (cross-process cache invalidation, PostgreSQL) is up.",
    multiprocess_mode="livesum",
)
LISTENER_RECONNECTS = Counter(f"{PREFIX}_cache_listener_disconnects", "Times a LISTEN connection was lost or failed.")
LOGIN_THROTTLES = Counter(f"{PREFIX}_login_throttled", "Login attempts refused by the login throttle.")

# Methods outside this set are counted as OTHER: a client must not be able to mint series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"


class RequestMetrics:
    """The request counter and histogram, with their label children kept (`labels()` costs a lock and a
    hash of every label per call; a request of the hot path pays one dict look-up instead)."""

    def __init__(self) -> None:
        self._children: dict[tuple[str, str, int], tuple[Callable[[], None], Callable[[float], None]]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            method_label = method if method in METHODS else "OTHER"
            children = (
                REQUESTS.labels(route, method_label, str(status)).inc,
                LATENCY.labels(route, method_label).observe,
            )
            if method in METHODS:
                self._children[key] = children
        count, latency = children
        count()
        latency(seconds)


def count_login_throttle() -> None:
    """Count one login attempt refused by throttling (called by `app.services.auth`)."""
    LOGIN_THROTTLES.inc()


def count_pool_timeout() -> None:
    POOL_TIMEOUTS.inc()


def listener_state(connected: bool, *, lost: bool = False) -> None:
    """The LISTEN connection of this process came up (`connected`) or went down (`lost`)."""
    LISTENER_CONNECTED.set(1 if connected else 0)
    if lost:
        LISTENER_RECONNECTS.inc()


def watch_pool(engine: AsyncEngine) -> None:
    """Keep the in-use gauge at the pool's own count, on every checkout and checkin."""
    pool = engine.sync_engine.pool
    checked_out: Callable[[], int] | None = getattr(pool, "checkedout", None)
    if checked_out is None:  # a pool that does not count (NullPool, StaticPool)
        return
    count = checked_out

    def on_checkout(*_: Any) -> None:
        POOL_IN_USE.set(count())

    def on_checkin(*_: Any) -> None:
        POOL_IN_USE.set(max(0, count() - 1))  # the event fires before the connection is returned

    event.listen(engine.sync_engine, "checkout", on_checkout)
    event.listen(engine.sync_engine, "checkin", on_checkin)


# --- multiprocess mode ------------------------------------------------------------------------------------


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def prepare_multiprocess(workers: int) -> None:
    """Before uvicorn starts: a clean `PROMETHEUS_MULTIPROC_DIR` when there is more than one worker (or the
    operator set one). One the operator did not choose is a temporary directory, removed at exit."""
    directory = multiprocess_dir()
    if directory is None:
        if workers <= 1:
            return
        directory = tempfile.mkdtemp(prefix="smarter-core-metrics-")
        os.environ[MULTIPROC_ENV] = directory
        import atexit

        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        return
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):  # a previous run's values would be added to this one's
        stale.unlink()


_PID_OF_FILE = re.compile(r"_(\d+)\.db$")


def mark_dead_workers(directory: str) -> None:
    """Drop the live gauges of workers that are gone (a crash leaves its files behind)."""
    for path in Path(directory).glob("gauge_live*.db"):
        match = _PID_OF_FILE.search(path.name)
        if match is None:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
        except PermissionError:  # alive, another user's
            continue


def worker_stopped() -> None:
    """At a worker's shutdown: its live gauges no longer count."""
    directory = multiprocess_dir()
    if directory is not None:
        with contextlib.suppress(OSError):
            multiprocess.mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus text format, every worker's when there are several."""
    directory = multiprocess_dir()
    if directory is None:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    mark_dead_workers(directory)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, directory)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST
