"""What `app.observe` adds to a request, in-process: `uv run python -m bench.observe_overhead`.

A bare ASGI app answers N requests, called directly and through `Observe` (request id, metrics, and the
access record written as a JSON line to /dev/null); the difference per request is the middleware's cost.
Run it with `PROMETHEUS_MULTIPROC_DIR=<empty dir>` for the multiprocess mode's file-backed values.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from app import metrics
from app.observe import ACCESS_LOGGER, JsonFormatter, Observe

N = 50_000
SCOPE: dict[str, Any] = {
    "type": "http",
    "method": "GET",
    "path": "/api/v1/plugins/5/",
    "headers": [(b"host", b"x"), (b"authorization", b"Token abc"), (b"accept", b"*/*")],
}
START = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
BODY = {"type": "http.response.body", "body": b"{}"}


async def bare(scope: Any, receive: Any, send: Any) -> None:
    await send(dict(START))
    await send(BODY)


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b""}


async def send(message: Any) -> None:
    return None


async def per_request(app: Any) -> float:
    for _ in range(1000):  # warm up
        await app(dict(SCOPE), receive, send)
    started = time.perf_counter()
    for _ in range(N):
        await app(dict(SCOPE), receive, send)
    return (time.perf_counter() - started) / N * 1e6


async def main() -> None:
    logger = logging.getLogger(ACCESS_LOGGER)
    base = await per_request(bare)
    logger.setLevel(logging.WARNING)
    without_log = await per_request(Observe(bare, with_metrics=True))
    nothing = await per_request(Observe(bare, with_metrics=False))
    handler = logging.FileHandler("/dev/null")
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    with_log = await per_request(Observe(bare, with_metrics=True))
    hit = metrics.CACHE_HITS.labels("bench").inc
    started = time.perf_counter()
    for _ in range(N):
        hit()
    count = (time.perf_counter() - started) / N * 1e6
    mode = "multiprocess" if metrics.multiprocess_dir() else "single process"
    print(f"prometheus-client {mode}; bare app {base:.1f} µs per request; added by Observe:")
    print(f"  request id only (metrics off, access log off): {nothing - base:.1f} µs")
    print(f"  request id + metrics (access log off):         {without_log - base:.1f} µs")
    print(f"  request id + metrics + JSON access line:       {with_log - base:.1f} µs")
    print(f"  one cache hit counted:                         {count:.2f} µs")


if __name__ == "__main__":
    asyncio.run(main())
