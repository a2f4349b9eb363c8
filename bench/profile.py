"""Where one scenario's time goes: `uv run --with py-spy python -m bench.profile <letter>`.

Seeds a fresh database like `make bench`, serves the scenario's server pinned to CPU 0, loads it from CPU 1
and samples the worker with py-spy meanwhile (py-spy is not a dependency: `--with py-spy` brings it for the
one run). Prints the functions holding the most samples, inclusive and self, and keeps the collapsed stacks
(the input of any flame-graph tool) for a closer look.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import seed, sql_call
from bench.__main__ import SERVER_CPU, scenarios
from bench.loadgen import Target, choose
from bench.server import Server

# Frames every request passes through (the event loop, uvicorn's runner): they say nothing about cost.
BORING = (
    "runpy",
    "uvicorn/__main__.py",
    "click/core.py",
    "uvicorn/main.py",
    "uvicorn/server.py",
    "uvicorn/_compat.py",
    "asyncio/runners",
)


def summarise(collapsed: Path, top: int) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        samples = int(count)
        total += samples
        frames = [f for f in stack.split(";") if f]
        for frame in set(frames):
            inclusive[frame] += samples
        if frames:
            own[frames[-1]] += samples
    if not total:
        return "no samples"
    lines = [f"{total} samples", "", "inclusive (a frame and everything it called):"]
    lines += [f"  {n / total:6.1%}  {f}" for f, n in inclusive.most_common(top * 3) if not any(b in f for b in BORING)][
        :top
    ]
    lines += ["", "self (the frame itself):"]
    lines += [f"  {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("scenario", help="scenario letter (b-g, k-n), as in the bench table")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    args = parser.parse_args(argv)
    spy = shutil.which("py-spy")
    if spy is None:
        print("py-spy is not installed: run `uv run --with py-spy python -m bench.profile ...`", file=sys.stderr)
        return 2
    loadgen, _ = choose(args.loadgen)
    out = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    url = asyncio.run(seed.create_database())
    try:
        seed.migrate_database(url)
        world = asyncio.run(seed.seed(url))
        world.sql_plugin_id = asyncio.run(sql_call.seed(url))  # the SQL tool call's (n) database and plugin
        chosen = {s.key: s for s in scenarios(world)}.get(args.scenario)
        if chosen is None or chosen.server == "ceiling":
            print(f"unknown scenario {args.scenario!r}", file=sys.stderr)
            return 2
        # As `make bench` serves it: `any` for the SQL tool call's database on 127.0.0.1 (`bench.sql_call`).
        env = {"DATABASE_URL": url, "SMARTER_CORE_LOG_LEVEL": "warning", "SMARTER_CORE_PLUGIN_NETWORKS": "any"}
        env["SMARTER_CORE_CACHE_MAXSIZE"] = "20000"
        if chosen.server == "nocache":
            env["SMARTER_CORE_CACHE_TTL"] = "0"
        server = Server(name="profile", app="app.main:create_app", env=env, cpu=SERVER_CPU)
        try:
            server.start("/readyz")
            call = chosen.call
            target = Target(server.port, call.method, call.path, call.headers, call.body, call.rotation)
            loadgen.run(target, 3, 32)
            record = [spy, "record", "--pid", str(server.pid), "--rate", str(args.rate), "--nonblocking", "--function"]
            record += ["--duration", str(round(args.duration))]
            collapsed = out / f"{args.scenario}.txt"
            sampler = subprocess.Popen(
                [*record, "--format", "raw", "--output", str(collapsed)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.5)
            result = loadgen.run(target, args.duration, 32)
            sampler.wait(timeout=args.duration + 30)
            print(f"{chosen.label}: {call} — {result.rps:,.0f} req/s, p99 {result.p99_ms:.1f} ms under py-spy\n")
            print(summarise(collapsed, args.top))
            print(f"\ncollapsed stacks: {collapsed}")
        finally:
            server.cleanup()
    finally:
        asyncio.run(seed.drop_database(url))
        asyncio.run(sql_call.drop(url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
