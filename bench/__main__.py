"""`make bench` = `uv run python -m bench`: seed PostgreSQL, serve, load, report, clean up.

Three servers, one at a time, each a single uvicorn worker pinned to CPU 0: the plain FastAPI ceiling, the
service with its caches, and the service with `SMARTER_CORE_CACHE_TTL=0`. The load generator runs pinned to
CPU 1 (and so do PostgreSQL's backends for the bench, when the postmaster runs here).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from app.config import Settings
from app.schemas.manifests.plugin import example_manifest
from bench import RESULTS_DIR, report, runtime_seed, seed, sql_call
from bench.loadgen import UNIQUE, LoadGenerator, Target, choose, run_tag
from bench.report import Outcome, Report
from bench.server import Server, cpu_busy_seconds, request, wait_until_quiet

SERVER_CPU = 0
OTHER_CPU = 1
MALFORMED_KEY = "Token not-a-valid-key"
QUIET_THRESHOLD = 0.15
# A service worker's peak resident set (VmHWM) after every scenario, caches full (issue 15).
PEAK_RSS_TARGET_MIB = 150


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    expect: int = 200
    rotation: tuple[tuple[str, dict[str, str]], ...] = ()  # see loadgen.Target

    def __str__(self) -> str:
        turns = f" (and {len(self.rotation) - 1} more in turn)" if len(self.rotation) > 1 else ""
        return f"{self.method} {self.path}{turns} → {self.expect}"


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    server: str  # "ceiling" | "service" | "nocache"
    call: Call
    target: float | None = None
    # A latency target instead: the median of the runs' p50, in ms, at `connections` (default: --connections).
    p50_target_ms: float | None = None
    connections: int | None = None


ROTATION_PLUGINS = 5  # per tenant


def detail_rotation(world: seed.World) -> tuple[tuple[str, dict[str, str]], ...]:
    """Each tenant's staff key reading the first plugins of its tenant, consecutive requests on other tenants."""
    return tuple(
        (f"/api/v1/plugins/{first + n}/", {"Authorization": f"Token {key}"})
        for n in range(ROTATION_PLUGINS)
        for key, first in zip(world.staff_keys, world.first_plugin_ids, strict=True)
    )


JSON_BODY = {"Content-Type": "application/json"}


def create_body() -> dict[str, Any]:
    """`POST /api/v1/plugins/` with every part, its name replaced per request (`loadgen.UNIQUE`)."""
    return {
        "name": UNIQUE,
        "description": "Written by the bench.",
        "tags": ["bench", "write"],
        "pluginClass": "static",
        "prompt": {"provider": "openai", "systemRole": "You help.", "model": "gpt-4o-mini", "maxTokens": 256},
        "selector": {"directive": "search_terms", "searchTerms": ["bench", "write"]},
        "data": {
            "description": "Facts.",
            "staticData": {"answer": 42},
            "parameters": {"type": "object", "properties": {"q": {"type": "string", "description": "A question."}}},
        },
    }


def apply_body() -> dict[str, Any]:
    """The example `Plugin` manifest, its name replaced per request."""
    manifest = example_manifest()
    manifest["metadata"]["name"] = UNIQUE
    return manifest


def mcp_call_body(tool: str) -> str:
    """A JSON-RPC `tools/call` as an MCP client sends it (stateless: no session to open first)."""
    params = {"name": tool, "arguments": {"inquiry_type": "conditions"}}
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params})


MCP_HEADERS = {
    **JSON_BODY,
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": "2025-06-18",
}


def runtime_scenarios(world: seed.World) -> list[Scenario]:
    """The plugin runtime's: selection, a static tool call, MCP `tools/call`.

    And the SQL tool call ("n": 10 rows of a 1,000-row table on the local PostgreSQL), its database,
    connection and plugin seeded by `bench.sql_call`.
    """
    staff = {"Authorization": f"Token {world.staff_keys[0]}"}
    runtime = {"Authorization": f"Token {world.runtime_key}"}
    selection = {"prompt": runtime_seed.PROMPT}
    call = {"arguments": {"inquiry_type": "conditions"}}
    return [
        Scenario(
            "k",
            f"selection: {runtime_seed.ACCOUNT_PLUGINS:,} search_terms plugins × {runtime_seed.TERMS_PER_PLUGIN} "
            f"terms + {runtime_seed.PLATFORM_PLUGINS} platform plugins, 30-word prompt, staff key",
            "service",
            Call("POST", "/api/v1/plugins/selection/", {**runtime, **JSON_BODY}, json.dumps(selection)),
            target=0.20,
        ),
        Scenario(
            "l",
            "static tool call `POST /plugins/{id}/call/`, staff key",
            "service",
            Call(
                "POST", f"/api/v1/plugins/{world.first_plugin_ids[0]}/call/", {**staff, **JSON_BODY}, json.dumps(call)
            ),
            target=0.40,
        ),
        Scenario(
            "m",
            "MCP `tools/call` of a static plugin (streamable HTTP, JSON response), staff key",
            "service",
            Call(
                "POST",
                "/mcp",
                {"Authorization": f"Bearer {world.staff_keys[0]}", **MCP_HEADERS},
                mcp_call_body(world.first_tool_name),
            ),
            target=0.15,
        ),
        Scenario(
            "n",
            f"SQL tool call: 10 rows of a {sql_call.ROWS:,}-row table on the local PostgreSQL, staff key",
            "service",
            Call(
                "POST",
                f"/api/v1/plugins/{world.sql_plugin_id}/call/",
                {**staff, **JSON_BODY},
                json.dumps({"arguments": sql_call.ARGUMENTS}),
            ),
            target=0.10,
        ),
    ]


def scenarios(world: seed.World) -> list[Scenario]:
    staff = {"Authorization": f"Token {world.staff_keys[0]}"}
    regular = {"Authorization": f"Token {world.regular_token}"}
    plugin = world.first_plugin_ids[0]
    rotation = detail_rotation(world)
    detail = Call("GET", rotation[0][0], rotation[0][1], rotation=rotation)
    return [
        Scenario("a", "ceiling: plain FastAPI `async def` → dict", "ceiling", Call("GET", "/")),
        Scenario(
            "b",
            f"plugin detail, {len(world.staff_keys)} staff keys × {ROTATION_PLUGINS} plugins, caches warm",
            "service",
            detail,
            target=0.65,
        ),
        Scenario(
            "c",
            f"plugin detail, {len(world.staff_keys)} staff keys × {ROTATION_PLUGINS} plugins, caches off (TTL 0)",
            "nocache",
            detail,
            target=0.25,
        ),
        Scenario(
            "d",
            "plugin list `?limit=50`, regular user (read scope, 10k rows)",
            "service",
            Call("GET", "/api/v1/plugins/?limit=50", regular),
            target=0.22,
        ),
        Scenario(
            "e",
            "manifest `get/plugins/`, staff key",
            "service",
            Call("POST", "/api/v1/cli/get/plugins/", staff),
            target=0.15,
        ),
        Scenario(
            "f",
            "malformed key → 401",
            "service",
            Call("GET", f"/api/v1/plugins/{plugin}/", {"Authorization": MALFORMED_KEY}, expect=401),
            target=1.0,
        ),
        Scenario("g", "`/healthz` (framework + middleware, no auth, no DB)", "service", Call("GET", "/healthz")),
        Scenario(
            "h",
            f"complete plugin list (no `limit`, {world.plugins:,} rows), superuser, 1 connection",
            "service",
            Call("GET", "/api/v1/plugins/", {"Authorization": f"Token {world.admin_key}"}),
            p50_target_ms=100.0,
            connections=1,
        ),
        *runtime_scenarios(world),
        # The writes last: each adds thousands of plugins to the first tenant, and every scenario above
        # measures the seeded world (its row counts, index sizes and memory), not what the writes left.
        Scenario(
            "i",
            "REST create with prompt, selector, data and tags, a new name per request, staff key",
            "service",
            Call("POST", "/api/v1/plugins/", {**staff, **JSON_BODY}, json.dumps(create_body()), expect=201),
            target=0.07,
        ),
        Scenario(
            "j",
            "manifest apply of a new static plugin (a new name per request), staff key",
            "service",
            Call("POST", "/api/v1/cli/apply/", {**staff, **JSON_BODY}, json.dumps(apply_body())),
            target=0.06,
        ),
    ]


def probe(port: int, call: Call) -> int:
    body = call.body.replace(UNIQUE, f"{run_tag()}_probe")
    status, _ = request(port, call.method, call.path, call.headers, body.encode())
    return status


def prime(port: int, call: Call) -> list[str]:
    """One request per rotation entry, in turn: every cache entry the scenario reads is warm afterwards.

    Returns the requests that did not answer the expected status.
    """
    wrong = []
    for path, headers in call.rotation:
        status, _ = request(port, call.method, path, headers, call.body.encode())
        if status != call.expect:
            wrong.append(f"{path} answered {status}")
    return wrong


def measure(
    loadgen: LoadGenerator,
    server: Server,
    scenario: Scenario,
    args: argparse.Namespace,
    ceiling: Target | None = None,
) -> Outcome:
    """The scenario's runs; with `ceiling`, each run follows a run of the ceiling (`Outcome.ratio`)."""
    outcome = Outcome(
        scenario.key,
        scenario.label,
        str(scenario.call),
        scenario.call.expect,
        scenario.target,
        p50_target_ms=scenario.p50_target_ms,
    )
    connections = scenario.connections or args.connections
    call = scenario.call
    status = probe(server.port, call)
    if status != call.expect:
        # A route that is not there (yet): the rest of the bench still runs.
        outcome.skipped = f"`{call.method} {call.path}` answered {status}, expected {call.expect}"
        print(f"  [{scenario.key}] {outcome.skipped}", flush=True)
        return outcome
    target = Target(server.port, call.method, call.path, call.headers, call.body, call.rotation)
    print(f"  [{scenario.key}] {scenario.label}: {call}", flush=True)
    wrong = prime(server.port, call)
    if wrong:
        outcome.skipped = f"{len(wrong)} of the rotation's requests did not answer {call.expect} (first: {wrong[0]})"
        print(f"      {outcome.skipped}", flush=True)
        return outcome
    if args.quiet_wait > 0:
        busy = wait_until_quiet((SERVER_CPU, OTHER_CPU), patience=args.quiet_wait)
        if busy >= QUIET_THRESHOLD:
            print(f"      the machine is busy ({busy:.0%} of a CPU used by others): numbers will be noisy", flush=True)
    loadgen.run(target, args.warmup, connections)
    for number in range(1, args.runs + 1):
        if ceiling is not None:
            outcome.paired_ceiling.append(loadgen.run(ceiling, args.duration, args.connections).rps)
        cpu_before, busy_before, wall_before = server.cpu_seconds(), cpu_busy_seconds(), time.monotonic()
        result = loadgen.run(target, args.duration, connections)
        wall = time.monotonic() - wall_before
        server_cpu = server.cpu_seconds() - cpu_before
        cpu0 = cpu_busy_seconds().get(SERVER_CPU, 0.0) - busy_before.get(SERVER_CPU, 0.0)
        outcome.cpu.append(server_cpu / wall)
        # The server is alone on its CPU by design: anything else busy there competed with it.
        outcome.foreign.append(max(0.0, cpu0 - server_cpu) / wall)
        outcome.runs.append(result)
        paired = f"  ceiling just before {outcome.paired_ceiling[-1]:,.0f}" if ceiling is not None else ""
        print(
            f"      run {number}: {result.rps:8,.0f} req/s  p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms"
            f"  non-2xx {result.non_2xx}  server cpu {outcome.cpu[-1]:.0%}  others on cpu {SERVER_CPU}"
            f" {outcome.foreign[-1]:.0%}{paired}",
            flush=True,
        )
    return outcome


def pin_postgres(postmaster: int | None, enabled: bool) -> tuple[int, set[int]] | None:
    """Pin the postmaster (so the bench's backends, forked from it) to CPU 1; returns what to restore."""
    if not enabled or postmaster is None or (os.cpu_count() or 1) < 2:
        return None
    try:
        previous = os.sched_getaffinity(postmaster)
        os.sched_setaffinity(postmaster, {OTHER_CPU})
    except OSError:
        return None  # not ours to pin (not root, or another namespace): measure unpinned
    return postmaster, previous


def unpin_postgres(pinned: tuple[int, set[int]] | None) -> None:
    if pinned is not None:
        try:
            os.sched_setaffinity(*pinned)
        except OSError:
            pass


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measured run (default 8)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per scenario (default 3)")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per scenario (default 3)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--only", default="", help="scenario letters to run, e.g. 'abf' (the ceiling always runs)")
    parser.add_argument("--no-pin-postgres", action="store_true", help="leave PostgreSQL's CPU affinity alone")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="seconds to wait, before each scenario, for other processes to leave the CPUs idle (0: don't)",
    )
    parser.add_argument("--keep-db", action="store_true", help="do not drop the bench database afterwards")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write bench/results/")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = dt.datetime.now().astimezone()
    loadgen, how = choose(args.loadgen)
    print(f"load generator: {loadgen.name} {loadgen.version} ({how}); nproc {os.cpu_count()}", flush=True)

    url = asyncio.run(seed.create_database())
    pinned = None
    outcomes: list[Outcome] = []
    peak_rss: dict[str, int | None] = {}
    try:
        seed.migrate_database(url)
        world = asyncio.run(seed.seed(url))
        world.sql_plugin_id = asyncio.run(sql_call.seed(url))
        print(
            f"seeded {seed.TENANTS} tenants, {world.plugins:,} plugins in {world.seconds:.1f} s "
            f"(database {url.rsplit('/', 1)[-1]})",
            flush=True,
        )
        postgres_version, postmaster = asyncio.run(seed.postgres_facts(url))
        pinned = pin_postgres(postmaster, not args.no_pin_postgres)
        load_before = report.load_average()

        chosen = [s for s in scenarios(world) if s.key == "a" or not args.only or s.key in args.only]
        servers = {
            "ceiling": ("plain FastAPI (ceiling)", "bench.ceiling:create_app", {}, "/"),
            # `any`: the SQL tool-call scenario's database is on 127.0.0.1 (`bench.sql_call`).
            "service": (
                "service",
                "app.main:create_app",
                # The seeded world holds over 11,000 plugins: a cache of the default 10,000 entries would
                # evict every row the superuser's complete list (h) reads, on every request (a row entry is
                # its JSON bytes, ~1 KiB with the cache's bookkeeping: 11,000 cost ~11 MiB).
                {"DATABASE_URL": url, "SMARTER_CORE_PLUGIN_NETWORKS": "any", "SMARTER_CORE_CACHE_MAXSIZE": "20000"},
                "/readyz",
            ),
            "nocache": (
                "service, SMARTER_CORE_CACHE_TTL=0",
                "app.main:create_app",
                {"DATABASE_URL": url, "SMARTER_CORE_CACHE_TTL": "0"},
                "/readyz",
            ),
        }
        # The ceiling stays up for the whole bench: every scenario's run follows one of its runs.
        name, app, env, ready = servers["ceiling"]
        ceiling = Server(name="ceiling", app=app, env={"SMARTER_CORE_LOG_LEVEL": "warning", **env}, cpu=SERVER_CPU)
        print(f"{name}: pid on port {ceiling.port}", flush=True)
        peak_rss[name] = None  # listed first
        try:
            ceiling.start(ready)
            ceiling_call = next(s.call for s in chosen if s.server == "ceiling")
            ceiling_target = Target(ceiling.port, ceiling_call.method, ceiling_call.path)
            for kind, (name, app, env, ready) in servers.items():
                batch = [s for s in chosen if s.server == kind]
                if not batch:
                    continue
                if kind == "ceiling":
                    outcomes += [measure(loadgen, ceiling, scenario, args) for scenario in batch]
                    continue
                server = Server(name=kind, app=app, env={"SMARTER_CORE_LOG_LEVEL": "warning", **env}, cpu=SERVER_CPU)
                print(f"{name}: pid on port {server.port}", flush=True)
                try:
                    server.start(ready)
                    for scenario in batch:
                        outcomes.append(measure(loadgen, server, scenario, args, ceiling=ceiling_target))
                    peak_rss[name] = server.status_kib("VmHWM")
                finally:
                    server.cleanup()
            peak_rss[servers["ceiling"][0]] = ceiling.status_kib("VmHWM")
        finally:
            ceiling.cleanup()
    finally:
        unpin_postgres(pinned)
        if not args.keep_db:
            asyncio.run(seed.drop_database(url))
            asyncio.run(sql_call.drop(url))

    outcomes.sort(key=lambda o: o.key)
    has_taskset = shutil.which("taskset") is not None
    result = Report(
        started=started,
        command=_command(argv),
        environment={
            **report.environment(postgres_version, f"{loadgen.name} {loadgen.version} ({how})"),
            "load average before": load_before,
        },
        outcomes=outcomes,
        peak_rss_kib=peak_rss,
        settings={
            "server": "uvicorn, 1 worker, `--loop uvloop --http httptools --no-access-log --log-level warning`",
            "pinning": (
                f"server CPU {SERVER_CPU}, load generator CPU {OTHER_CPU}"
                + (", PostgreSQL backends CPU 1" if pinned else ", PostgreSQL unpinned")
                if has_taskset
                else "none (taskset missing)"
            ),
            "load": f"{args.connections} connections, {args.warmup:g} s warm-up, {args.runs} × {args.duration:g} s",
            "database": f"PostgreSQL on 127.0.0.1, fresh database, pool {_pool()}",
            "data": (
                f"{seed.TENANTS} tenants × (1 staff user + API key), 1 regular user (login token), "
                f"{world.plugins:,} static plugins with prompt, selector and data "
                f"({seed.PLUGINS_PER_TENANT} per tenant)"
            ),
        },
    )
    print()
    print(result.table())
    noisy = [o.key for o in outcomes if o.noisy]
    if noisy:
        print(f"⚠ other processes competed for the server's CPU during {', '.join(noisy)}: rerun on a quiet machine")
    print()
    print("Peak RSS per worker:")
    print(result.rss_lines())
    ceiling = result.ceiling
    for outcome in outcomes:
        verdict = outcome.verdict(ceiling)
        if verdict in ("PASS", "FAIL"):
            if outcome.p50_target_ms is not None:
                said = f"p50 {outcome.p50:.1f} ms (target ≤ {outcome.p50_target_ms:.0f} ms)"
            else:
                said = f"{outcome.ratio(ceiling):.2f} × ceiling (target ≥ {outcome.target})"
            print(f"{verdict}  [{outcome.key}] {outcome.label}: {said}")
    rss_failed = False
    for name, kib in peak_rss.items():
        if kib is not None and name != servers["ceiling"][0]:
            rss_failed |= kib / 1024 > PEAK_RSS_TARGET_MIB
            verdict = "FAIL" if kib / 1024 > PEAK_RSS_TARGET_MIB else "PASS"
            print(f"{verdict}  peak RSS of {name}: {kib / 1024:.1f} MiB (target ≤ {PEAK_RSS_TARGET_MIB} MiB)")
    if not args.no_write:
        print(f"\nwritten: {result.write(RESULTS_DIR).relative_to(RESULTS_DIR.parent.parent)}")
    errors = [o for o in outcomes if o.measured and o.expect < 400 and o.non_2xx > 0]
    for outcome in errors:
        print(f"WARNING [{outcome.key}]: {outcome.non_2xx} responses were not 2xx/3xx", file=sys.stderr)
    return 1 if args.strict and (result.failures() or rss_failed) else 0


def _command(argv: list[str] | None) -> str:
    given = sys.argv[1:] if argv is None else argv
    return f"uv run python -m bench {shlex.join(given)}" if given else "make bench"


def _pool() -> str:
    defaults = Settings.model_fields
    return f"{defaults['db_pool_size'].default} + {defaults['db_max_overflow'].default} overflow"


if __name__ == "__main__":
    sys.exit(main())
