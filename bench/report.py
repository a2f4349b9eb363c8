"""The results: one table (median of the runs, ratio to the ceiling, PASS/FAIL), the environment, the file."""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from bench.loadgen import RunResult

# Above this share of the server's CPU taken by other processes, a result is marked as disturbed.
NOISE_THRESHOLD = 0.10
PACKAGES = ("fastapi", "starlette", "uvicorn", "uvloop", "httptools", "pydantic", "sqlalchemy", "asyncpg")


@dataclass
class Outcome:
    """One scenario's measurement (or why it was not measured)."""

    key: str
    label: str
    request: str
    expect: int
    target: float | None = None
    p50_target_ms: float | None = None  # a latency target (the median p50), instead of `target`
    runs: list[RunResult] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # server CPU share per run (1.0 = one full core)
    foreign: list[float] = field(default_factory=list)  # other processes' share of the server's CPU per run
    # The ceiling's req/s measured right before each run: this machine's speed at that moment.
    paired_ceiling: list[float] = field(default_factory=list)
    skipped: str = ""

    def ratio(self, ceiling: float) -> float:
        """req/s as a share of the ceiling: the median of each run over the ceiling run just before it.

        A shared machine's speed drifts by ±10% within minutes; a ratio of two runs seconds apart does not
        carry that drift, where the ceiling's own runs, measured minutes earlier, would. Unpaired (the
        ceiling itself), the median req/s over `ceiling`.
        """
        if self.paired_ceiling:
            return statistics.median(r.rps / c for r, c in zip(self.runs, self.paired_ceiling, strict=True))
        return self.rps / ceiling if ceiling else 0.0

    @property
    def rps(self) -> float:
        return statistics.median(r.rps for r in self.runs)

    @property
    def p50(self) -> float:
        return statistics.median(r.p50_ms for r in self.runs)

    @property
    def p99(self) -> float:
        return statistics.median(r.p99_ms for r in self.runs)

    @property
    def non_2xx(self) -> int:
        return sum(r.non_2xx for r in self.runs)

    @property
    def socket_errors(self) -> int:
        return sum(r.socket_errors for r in self.runs)

    @property
    def noisy(self) -> bool:
        return bool(self.foreign) and statistics.median(self.foreign) > NOISE_THRESHOLD

    @property
    def measured(self) -> bool:
        return bool(self.runs)

    def verdict(self, ceiling: float) -> str:
        if not self.measured or (self.target is None and self.p50_target_ms is None):
            return ""
        wrong_status = self.expect < 400 and self.non_2xx > 0
        fast = self.p50 <= self.p50_target_ms if self.p50_target_ms is not None else True
        ok = fast and (self.target is None or self.ratio(ceiling) >= self.target)
        ok = ok and not wrong_status and self.socket_errors == 0
        return "PASS" if ok else "FAIL"


@dataclass
class Report:
    started: dt.datetime
    command: str
    environment: dict[str, str]
    outcomes: list[Outcome]
    peak_rss_kib: dict[str, int | None]
    settings: dict[str, str]

    @property
    def ceiling(self) -> float:
        first = self.outcomes[0]
        return first.rps if first.measured else 0.0

    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.verdict(self.ceiling) == "FAIL"]

    def table(self) -> str:
        rows = [
            "| | scenario | req/s | × ceiling | p50 ms | p99 ms | non-2xx | server CPU | target | result |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|---|",
        ]
        for o in self.outcomes:
            if not o.measured:
                rows.append(f"| {o.key} | {o.label} | – | – | – | – | – | – | {_target(o)} | skipped: {o.skipped} |")
                continue
            ratio = o.ratio(self.ceiling)
            non_2xx = f"{o.non_2xx:,}" + (f" (expected {o.expect})" if o.expect >= 400 else "")
            if o.socket_errors:
                non_2xx += f", {o.socket_errors} socket errors"
            noisy = " ⚠" if o.noisy else ""
            rows.append(
                f"| {o.key} | {o.label} | {o.rps:,.0f}{noisy} | {ratio:.2f} | "
                f"{o.p50:.2f} | {o.p99:.2f} | {non_2xx} | {statistics.median(o.cpu):.0%} | {_target(o)} | "
                f"{o.verdict(self.ceiling)} |"
            )
        return "\n".join(rows)

    def runs_table(self) -> str:
        rows = [
            "| | request | run req/s | ceiling req/s just before | run p99 ms | other processes on the server's CPU |",
            "|---|---|---|---|---|---|",
        ]
        for o in self.outcomes:
            if o.measured:
                rps = ", ".join(f"{r.rps:,.0f}" for r in o.runs)
                ceiling = ", ".join(f"{c:,.0f}" for c in o.paired_ceiling) or "–"
                p99 = ", ".join(f"{r.p99_ms:.2f}" for r in o.runs)
                foreign = ", ".join(f"{f:.0%}" for f in o.foreign)
                rows.append(f"| {o.key} | `{o.request}` | {rps} | {ceiling} | {p99} | {foreign} |")
        return "\n".join(rows)

    def rss_lines(self) -> str:
        return "\n".join(
            f"- {name}: {kib / 1024:.1f} MiB" if kib is not None else f"- {name}: unknown"
            for name, kib in self.peak_rss_kib.items()
        )

    def markdown(self) -> str:
        env = "\n".join(f"| {k} | {v} |" for k, v in self.environment.items())
        settings = "\n".join(f"| {k} | {v} |" for k, v in self.settings.items())
        verdicts = [o.verdict(self.ceiling) for o in self.outcomes]
        summary = f"{verdicts.count('PASS')} PASS, {verdicts.count('FAIL')} FAIL"
        return f"""# Benchmark results, {self.started:%Y-%m-%d}

Run at {self.started:%Y-%m-%d %H:%M:%S %Z} with `{self.command}`. Targets: {summary}.

Median of the runs; `× ceiling` is the median, over the runs, of a run's req/s divided by the plain FastAPI
app's req/s in a run of the same length just before it (both servers stay up for the whole bench);
`server CPU` is the worker's CPU time over wall time (100% = the one core it is pinned to: below that,
the worker was waiting, on PostgreSQL or on the load generator). ⚠ marks a result measured while other
processes took more than {NOISE_THRESHOLD:.0%} of the server's CPU (a shared machine): rerun it on a quiet one.

{self.table()}

Peak RSS per worker (VmHWM after the runs):

{self.rss_lines()}

## Runs

{self.runs_table()}

## Setup

| setting | value |
|---|---|
{settings}

## Environment

| | |
|---|---|
{env}
"""

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.started:%Y-%m-%d}.md"
        path.write_text(self.markdown(), encoding="utf-8")
        return path


def _target(outcome: Outcome) -> str:
    if outcome.p50_target_ms is not None:
        return f"p50 ≤ {outcome.p50_target_ms:.0f} ms"
    return f"≥ {outcome.target:.2f}" if outcome.target is not None else ""


def environment(postgres_version: str, loadgen: str) -> dict[str, str]:
    versions = []
    for package in PACKAGES:
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    return {
        "CPU": _cpu_model(),
        "nproc": str(os.cpu_count()),
        "memory": _memory(),
        "kernel": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "packages": ", ".join(versions),
        "PostgreSQL": postgres_version,
        "load generator": loadgen,
    }


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"
