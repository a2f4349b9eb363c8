"""One uvicorn worker in a child process, pinned to a CPU, with its readiness, CPU time and peak RSS."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import PROJECT_ROOT

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(command: list[str], cpu: int | None) -> list[str]:
    """`taskset -c <cpu> command` when taskset exists (it execs, so the child's pid is the command's)."""
    if cpu is None or shutil.which("taskset") is None:
        return command
    return ["taskset", "-c", str(cpu), *command]


def request(port: int, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
    """One request on a fresh connection: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body if method != "GET" else None, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@dataclass
class Server:
    """`uvicorn <app> --factory`, 1 worker, uvloop + httptools, no access log."""

    name: str
    app: str
    env: dict[str, str] = field(default_factory=dict)
    cpu: int | None = 0
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def command(self) -> list[str]:
        return pinned(
            [
                sys.executable,
                "-m",
                "uvicorn",
                self.app,
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            self.cpu,
        )

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} is not running")
        return self.process.pid

    def start(self, ready_path: str, timeout: float = 60.0) -> None:
        log = tempfile.NamedTemporaryFile(prefix=f"bench-{self.name}-", suffix=".log", delete=False)
        self.log_path = Path(log.name)
        env = {**os.environ, **self.env}
        self.process = subprocess.Popen(self.command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                status, _ = request(self.port, "GET", ready_path, {})
            except OSError:
                status = 0
            if status == 200:
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} was not ready on {ready_path} within {timeout:.0f} s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the worker so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def status_kib(self, key: str) -> int | None:
        """A `kB` line of /proc/<pid>/status (VmHWM is the peak resident set size)."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith(f"{key}:"):
                    return int(line.split()[1])
        except OSError:
            return None
        return None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def cleanup(self) -> None:
        self.stop()
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)


def cpu_busy_seconds() -> dict[int, float]:
    """Busy time (user, nice, system, steal) of each CPU so far, from /proc/stat.

    Interrupt time is left out: loopback traffic is processed in softirq on whichever CPU, on behalf of the
    bench itself, and would read as contention.
    """
    busy: dict[int, float] = {}
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return busy
    for line in lines:
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            user, nice, system, _idle, _iowait, _irq, _softirq, steal = (int(v) for v in values[:8])
            busy[int(name[3:])] = (user + nice + system + steal) / CLOCK_TICKS
    return busy


def wait_until_quiet(cpus: tuple[int, ...], *, threshold: float = 0.15, patience: float = 60.0) -> float:
    """Wait (at most `patience` s) for a 1 s window where each of `cpus` is busy below `threshold`.

    Other work on a shared machine (a test suite, a build) would be measured as the service's slowness.
    Returns the busiest CPU's share in the last window.
    """
    deadline = time.monotonic() + patience
    while True:
        before = cpu_busy_seconds()
        time.sleep(1.0)
        after = cpu_busy_seconds()
        share = max((after.get(c, 0.0) - before.get(c, 0.0) for c in cpus), default=0.0)
        if share < threshold or time.monotonic() >= deadline:
            return share
