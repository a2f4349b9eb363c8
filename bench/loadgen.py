"""Load generators on loopback: `wrk` when installed, else a bundled asyncio HTTP/1.1 keep-alive client.

Both run as a separate process pinned to CPU 1 and report the same numbers: requests, duration,
non-2xx responses (wrk counts status >= 400), socket errors, p50 and p99 latency.
The bundled client runs as `python -m bench.loadgen ...` and prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.server import pinned

LOADGEN_CPU = 1
APT_TIMEOUT = 120


@dataclass(frozen=True)
class Target:
    port: int
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    # When given, successive requests cycle through these (path, headers) instead of `path`/`headers`:
    # many keys and objects, so neither the caches nor single-flight loading can serve one fact to all.
    rotation: tuple[tuple[str, dict[str, str]], ...] = ()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def requests(self) -> list[tuple[str, dict[str, str]]]:
        return list(self.rotation) or [(self.path, self.headers)]


@dataclass(frozen=True)
class RunResult:
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


# In a body, replaced on every request by a name no other request of the bench uses (`run_tag()` + a counter):
# write scenarios create a new object per request.
UNIQUE = "UNIQUE_NAME"


def run_tag() -> str:
    """A prefix for the unique names of one run of the load generator (names are snake_case, lower)."""
    return f"u{time.time_ns() // 1_000_000 % 10**11:011d}"


class LoadGenerator:
    name = "abstract"
    version = ""

    def run(self, target: Target, duration: float, connections: int) -> RunResult:
        raise NotImplementedError


def _lua_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


# wrk's done() hook prints exact numbers (latency in microseconds), so nothing is parsed from its table.
_WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH_RESULT %.0f %.0f %.0f %.0f %.3f %.3f\\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


class Wrk(LoadGenerator):
    name = "wrk"

    def __init__(self, path: str, cpu: int | None = LOADGEN_CPU) -> None:
        self.path = path
        self.cpu = cpu
        banner = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
        match = re.search(r"wrk\s+(\S+)", banner.stdout + banner.stderr)
        self.version = match.group(1) if match else "unknown"

    def run(self, target: Target, duration: float, connections: int) -> RunResult:
        lines = [f"wrk.method = {_lua_string(target.method)}"]
        if target.method != "GET":
            lines.append(f"wrk.body = {_lua_string(target.body)}")
        if UNIQUE in target.body:
            # One thread (-t1): a counter of its own makes every request's name new.
            lines += [
                f"local tag = {_lua_string(run_tag())}",
                "local counter = 0",
                "request = function()",
                "  counter = counter + 1",
                f"  local body = string.gsub(wrk.body, {_lua_string(UNIQUE)}, tag .. '_' .. counter)",
                "  return wrk.format(nil, nil, nil, body)",
                "end",
            ]
        lines += [f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in target.headers.items()]
        if target.rotation:
            # Formatted once in init(), then handed out in turn (wrk.format needs wrk.host, set by then).
            lines.append("local variants = {}")
            for path, headers in target.rotation:
                table = ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items())
                lines.append(f"variants[#variants + 1] = {{{_lua_string(path)}, {{{table}}}}}")
            lines += [
                "local formatted = {}",
                "local turn = 0",
                "init = function(args)",
                "  for i, v in ipairs(variants) do",
                "    v[2]['Host'] = wrk.headers['Host']",
                "    formatted[i] = wrk.format(nil, v[1], v[2])",
                "  end",
                "end",
                "request = function()",
                "  turn = turn % #formatted + 1",
                "  return formatted[turn]",
                "end",
            ]
        with tempfile.NamedTemporaryFile("w", prefix="bench-wrk-", suffix=".lua", delete=False) as script:
            script.write("\n".join(lines) + _WRK_DONE)
        try:
            command = [
                self.path,
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(duration))}s",
                "--timeout",
                "10s",
                "-s",
                script.name,
                target.url,
            ]
            done = subprocess.run(
                pinned(command, self.cpu), capture_output=True, text=True, check=False, timeout=duration + 60
            )
        finally:
            Path(script.name).unlink(missing_ok=True)
        match = re.search(r"^BENCH_RESULT (\S+) (\S+) (\S+) (\S+) (\S+) (\S+)$", done.stdout, re.MULTILINE)
        if done.returncode != 0 or match is None:
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-500:]} {done.stderr[-500:]}")
        requests, micros, non_2xx, errors, p50, p99 = (float(v) for v in match.groups())
        return RunResult(int(requests), micros / 1e6, int(non_2xx), int(errors), p50 / 1000, p99 / 1000)


class PythonClient(LoadGenerator):
    """The bundled client, in its own process (`python -m bench.loadgen`)."""

    name = "bench.loadgen (asyncio, uvloop)"

    def __init__(self, cpu: int | None = LOADGEN_CPU) -> None:
        self.cpu = cpu
        self.version = f"Python {sys.version.split()[0]}"

    def run(self, target: Target, duration: float, connections: int) -> RunResult:
        command = [
            sys.executable,
            "-m",
            "bench.loadgen",
            "--port",
            str(target.port),
            "--method",
            target.method,
            "--body",
            target.body,
            "--connections",
            str(connections),
            "--duration",
            str(duration),
        ]
        with tempfile.NamedTemporaryFile("w", prefix="bench-requests-", suffix=".json", delete=False) as spec:
            json.dump(target.requests(), spec)
        command += ["--requests", spec.name]
        try:
            done = subprocess.run(
                pinned(command, self.cpu), capture_output=True, text=True, check=False, timeout=duration + 60
            )
        finally:
            Path(spec.name).unlink(missing_ok=True)
        if done.returncode != 0:
            raise RuntimeError(f"bench.loadgen failed ({done.returncode}): {done.stderr[-1000:]}")
        return RunResult(**json.loads(done.stdout.strip().splitlines()[-1]))


def choose(preference: str, *, install: bool = True) -> tuple[LoadGenerator, str]:
    """The load generator, and a note on how it was chosen."""
    if preference == "python":
        return PythonClient(), "bundled client requested"
    path = shutil.which("wrk")
    note = "wrk found"
    if path is None and install and os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is not installed; trying `apt-get install -y wrk` ...", flush=True)
        try:
            subprocess.run(
                ["apt-get", "install", "-y", "-q", "wrk"], capture_output=True, timeout=APT_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired:
            pass
        path = shutil.which("wrk")
        note = "wrk installed with apt-get"
    if path is not None:
        return Wrk(path), note
    if preference == "wrk":
        raise RuntimeError("wrk was requested but is not installed")
    return PythonClient(), "wrk unavailable: bundled asyncio client"


# --- the bundled client ---------------------------------------------------------------------------


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; returns (status, whether the server keeps the connection)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    chunked = False
    keep_alive = True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection" and b"close" in value.lower():
            keep_alive = False
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status, keep_alive


async def _connection(
    port: int, payloads: list[tuple[bytes, bytes]], deadline: float, latencies: list[float], counters: dict[str, int]
) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    try:
        while (started := time.perf_counter()) < deadline:
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                assert reader is not None
                counters["turn"] += 1
                writer.write(_wire(payloads[counters["turn"] % len(payloads)], counters["turn"]))
                status, keep_alive = await _read_response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                counters["socket_errors"] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            latencies.append(time.perf_counter() - started)
            if not 200 <= status < 400:
                counters["non_2xx"] += 1
            if not keep_alive:
                writer.close()
                reader = writer = None
    finally:
        if writer is not None:
            writer.close()


_TAG = run_tag()


def _payloads(args: argparse.Namespace) -> list[tuple[bytes, bytes]]:
    """Every request of the rotation: its head without Content-Length, and its body."""
    body = args.body.encode() if args.method != "GET" else b""
    payloads = []
    for path, headers in json.loads(Path(args.requests).read_text()):
        head = [f"{args.method} {path} HTTP/1.1", f"Host: 127.0.0.1:{args.port}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        payloads.append(("\r\n".join(head)).encode(), body)
    return payloads


def _wire(payload: tuple[bytes, bytes], turn: int) -> bytes:
    """A request as bytes on the wire, its body's `UNIQUE` placeholder (if any) replaced by a new name."""
    head, body = payload
    if head.startswith(b"GET "):
        return head + b"\r\n\r\n"
    body = body.replace(UNIQUE.encode(), f"{_TAG}_{turn}".encode())
    return head + f"\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


async def _load(args: argparse.Namespace, payloads: list[tuple[bytes, bytes]]) -> RunResult:
    latencies: list[float] = []
    counters = {"non_2xx": 0, "socket_errors": 0, "turn": 0}
    started = time.perf_counter()
    deadline = started + args.duration
    await asyncio.gather(
        *(_connection(args.port, payloads, deadline, latencies, counters) for _ in range(args.connections))
    )
    elapsed = time.perf_counter() - started
    latencies.sort()

    def percentile(p: float) -> float:
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    return RunResult(
        len(latencies), elapsed, counters["non_2xx"], counters["socket_errors"], percentile(50), percentile(99)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description="HTTP/1.1 keep-alive load.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--requests", required=True, help="JSON file: [[path, {header: value}], ...], used in turn")
    parser.add_argument("--body", default="")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=8.0)
    args = parser.parse_args(argv)
    try:
        import uvloop  # optional: the client also works on asyncio's own loop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    print(json.dumps(asdict(runner(_load(args, _payloads(args))))))


if __name__ == "__main__":
    main()
