"""/metrics: Prometheus text, the series the issue asks for, no tenant labels, off with SMARTER_CORE_METRICS=false,
and prometheus-client's multiprocess mode adding up several workers' values."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app import metrics
from app.main import create_app
from app.runtime import Runtime
from tests import support
from tests.live import PROJECT_ROOT


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


async def test_metrics_count_requests_latency_and_caches(client: httpx.AsyncClient, runtime: Runtime) -> None:
    world = await support.seed_world(runtime)
    admin = world["superuser"]
    before = (await client.get("/metrics")).text
    for _ in range(3):
        assert (await client.get("/api/v1/plugins/", headers=admin.headers)).status_code == 200
    assert (await client.get("/api/v1/plugins/77/", headers=admin.headers)).status_code == 404
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    after = response.text
    route = {"route": "/api/v1/plugins/", "method": "GET"}
    requests = "smarter_core_http_requests_total"
    assert value(after, requests, **route, status="200") - value(before, requests, **route, status="200") == 3
    assert value(after, requests, route="/api/v1/plugins/{id}/", method="GET", status="404") >= 1
    count = "smarter_core_http_request_duration_seconds_count"
    assert value(after, count, **route) - value(before, count, **route) == 3
    assert value(after, "smarter_core_http_request_duration_seconds_bucket", **route, le="+Inf") >= 3
    # The first request loaded the admin's principal, the next two found it.
    hits = "smarter_core_cache_hits_total"
    assert value(after, hits, cache="principal") - value(before, hits, cache="principal") >= 2
    assert value(after, "smarter_core_cache_loads_total", cache="principal") >= 1
    assert "smarter_core_db_pool_connections_in_use" in after
    assert "smarter_core_db_pool_wait_timeouts_total" in after
    assert "smarter_core_cache_listener_connected" in after
    assert "smarter_core_login_throttled_total" in after
    # No tenant, user or key in any label.
    for secretish in (admin.key, admin.user.username, world.account_a.account_number, "tenant_a"):
        assert secretish not in after


def test_count_login_throttle_is_counted() -> None:
    before = metrics.LOGIN_THROTTLES._value.get()  # the test reads the counter, the code never does
    metrics.count_login_throttle()
    assert metrics.LOGIN_THROTTLES._value.get() == before + 1


async def test_metrics_false_means_no_endpoint(database_url: str) -> None:
    application = create_app(support.test_settings(database_url, metrics=False))
    async with support.client_for(application) as http:
        response = await http.get("/metrics")
        assert response.status_code == 404
        assert response.headers["x-request-id"]


@pytest.mark.postgres_only
async def test_the_listen_connection_is_reported(client: httpx.AsyncClient, runtime: Runtime) -> None:
    """The gauge follows this process's LISTEN connection down and up again (the gauge is process-wide, and
    other runtimes of the test process start and stop theirs: the test makes its own transitions)."""
    listener = runtime.listener
    assert listener is not None
    await listener.stop()
    assert value((await client.get("/metrics")).text, "smarter_core_cache_listener_connected") == 0
    listener.start()
    await asyncio.wait_for(listener.connected.wait(), timeout=10)
    assert value((await client.get("/metrics")).text, "smarter_core_cache_listener_connected") == 1


WORKER = textwrap.dedent(
    """
    import sys
    from app import metrics
    metrics.RequestMetrics().observe("/api/v1/plugins/", "GET", 200, 0.002)
    metrics.POOL_IN_USE.set(3)
    metrics.CACHE_HITS.labels("principal").inc(5)
    """
)


def test_multiprocess_mode_adds_up_workers_and_forgets_dead_ones(tmp_path: Path) -> None:
    """Two 'workers' (processes) count into one directory; a third reads the sum. Both are dead by then, so
    their live gauges (connections in use) no longer count, while their counters do."""
    (tmp_path / "stale_counter_1.db").write_bytes(b"")  # a previous run's file: cleaned at start
    env = {**os.environ, metrics.MULTIPROC_ENV: str(tmp_path)}
    prepare = "from app import metrics; metrics.prepare_multiprocess(2)"
    subprocess.run([sys.executable, "-c", prepare], cwd=PROJECT_ROOT, env=env, check=True)
    assert not (tmp_path / "stale_counter_1.db").exists()
    for _ in range(2):
        subprocess.run([sys.executable, "-c", WORKER], cwd=PROJECT_ROOT, env=env, check=True)
    read = "from app import metrics; print(metrics.exposition()[0].decode())"
    text = subprocess.run(
        [sys.executable, "-c", read], cwd=PROJECT_ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout
    assert value(text, "smarter_core_http_requests_total", route="/api/v1/plugins/", method="GET", status="200") == 2
    assert value(text, "smarter_core_cache_hits_total", cache="principal") == 10
    assert value(text, "smarter_core_db_pool_connections_in_use") == 0
