"""The server's CPU per request, scenario by scenario: a measure that a loaded machine blurs less than req/s.

`uv run --frozen python -m bench.server_cpu [--only bei] [--requests 400] [--rounds 3]` seeds a database
like `make bench`, starts the ceiling and the service (uvicorn, one worker, as the bench does, unpinned),
sends each scenario's request `--requests` times in turn on one keep-alive connection (after one pass over
its rotation, which warms every cache entry it reads) and reads the worker's CPU time (every thread's, from
/proc's schedstat, in nanoseconds) before and after, `--rounds` times; the writes come last (their plugins
would grow the first tenant's `get/plugins/` table). The lowest of the rounds is kept: another process
competing for the CPU only ever adds to it. The ceiling runs before every round, and `ceiling CPU /
scenario CPU` (the median over the rounds) is what the scenario's `× ceiling` would be if both were bound
by the worker's CPU alone, as they are in the bench (the load generator and PostgreSQL run on the other CPU
there). One request at a time, it tracked the bench's ratios within 0.05 on a quiet machine; on a busy one
every number grows, the heavier scenarios' more than the ceiling's.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import statistics
from pathlib import Path

from bench import seed, sql_call
from bench.__main__ import Call, scenarios
from bench.loadgen import UNIQUE, run_tag
from bench.server import Server


def cpu_ns(pid: int) -> int:
    """CPU time of every thread of `pid` so far (the JSON parsing worker threads included)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError):  # a thread that just ended
            continue
    return total


class Client:
    """One keep-alive connection; `UNIQUE` in a body becomes a new name on every request."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.tag = run_tag()
        self.turn = 0

    def send(self, call: Call, turn: int) -> int:
        path, headers = call.rotation[turn % len(call.rotation)] if call.rotation else (call.path, call.headers)
        self.turn += 1
        body = call.body.replace(UNIQUE, f"{self.tag}_{self.turn}").encode()
        self.connection.request(call.method, path, body=body if call.method != "GET" else None, headers=headers)
        response = self.connection.getresponse()
        response.read()
        return response.status


def per_request_us(server: Server, call: Call, requests: int) -> float:
    client = Client(server.port)  # a new connection: an idle one may have been closed since
    for turn in range(max(20, len(call.rotation))):  # warm: every cache entry read, compiled statements
        status = client.send(call, turn)
        if status != call.expect:
            raise RuntimeError(f"{call} answered {status}")
    before = cpu_ns(server.pid)
    for turn in range(requests):
        client.send(call, turn)
    return (cpu_ns(server.pid) - before) / requests / 1000


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.server_cpu", description=__doc__)
    parser.add_argument("--only", default="bcdefij", help="scenario letters (default bcdefij)")
    parser.add_argument("--requests", type=int, default=400, help="requests per scenario and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    url = asyncio.run(seed.create_database())
    servers: list[Server] = []
    try:
        seed.migrate_database(url)
        world = asyncio.run(seed.seed(url))
        world.sql_plugin_id = asyncio.run(sql_call.seed(url))  # the SQL tool call's (n) database and plugin
        chosen = [s for s in scenarios(world) if s.key == "a" or s.key in args.only]
        env = {"SMARTER_CORE_LOG_LEVEL": "warning"}
        kinds = {
            "ceiling": ("bench.ceiling:create_app", {}, "/"),
            # `any`: the SQL tool call's database is on 127.0.0.1 (`bench.sql_call`), as in `make bench`.
            "service": ("app.main:create_app", {"DATABASE_URL": url, "SMARTER_CORE_PLUGIN_NETWORKS": "any"}, "/readyz"),
            "nocache": ("app.main:create_app", {"DATABASE_URL": url, "SMARTER_CORE_CACHE_TTL": "0"}, "/readyz"),
        }
        running: dict[str, Server] = {}
        for kind in dict.fromkeys(s.server for s in chosen):
            app, extra, ready = kinds[kind]
            server = Server(name=kind, app=app, env={**env, **extra}, cpu=None)
            servers.append(server)
            server.start(ready)
            running[kind] = server
        best: dict[str, float] = {}
        ratios: dict[str, list[float]] = {}
        ceiling_call = next(s.call for s in chosen if s.key == "a")
        # The writes last: their plugins join the first tenant's, whose `get/plugins/` (e) would grow.
        for scenario in sorted(chosen, key=lambda s: s.call.method != "GET" and UNIQUE in s.call.body):
            if scenario.p50_target_ms is not None or scenario.key == "a":
                continue  # a latency target (h), not a ratio; the ceiling runs before every round
            for number in range(1, args.rounds + 1):
                ceiling = per_request_us(running["ceiling"], ceiling_call, args.requests)
                us = per_request_us(running[scenario.server], scenario.call, args.requests)
                best[scenario.key] = min(us, best.get(scenario.key, us))
                best["a"] = min(ceiling, best.get("a", ceiling))
                ratios.setdefault(scenario.key, []).append(ceiling / us)
                print(
                    f"  [{scenario.key}] round {number} {us:8.0f} µs (ceiling just before {ceiling:5.0f} µs)",
                    flush=True,
                )
        print(
            f"\nserver CPU per request (lowest of {args.rounds} rounds of {args.requests}; the ratio is the median of"
        )
        print("the rounds' ceiling CPU just before over the scenario's):")
        for scenario in chosen:
            if scenario.key not in best:
                continue
            us = best[scenario.key]
            ratio = statistics.median(ratios[scenario.key]) if scenario.key in ratios else 1.0
            target = f"target ≥ {scenario.target}" if scenario.target is not None else ""
            print(f"  [{scenario.key}] {us:8.0f} µs  ceiling/this {ratio:5.2f}  {target:14s} {scenario.label}")
    finally:
        for server in servers:
            server.cleanup()
        asyncio.run(seed.drop_database(url))
        asyncio.run(sql_call.drop(url))


if __name__ == "__main__":
    main()
