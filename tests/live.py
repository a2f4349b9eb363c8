"""`smarter-core serve` in a subprocess on a free port: the service as operators run it.

On an empty database the server migrates, bootstraps and prints the admin key in its banner; `live_server`
reads it from stdout. It yields once `/readyz` answers 200 and stops the process afterwards.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from tests import support
from tests.secrets_scan import SCANNER

PROJECT_ROOT = Path(__file__).resolve().parents[1]
KEY_LINE = re.compile(r"^\s*([0-9a-f]{64})\s*$")
START_TIMEOUT = 60.0


@dataclass
class LiveServer:
    base_url: str
    admin_key: str
    stderr: IO[bytes]

    def log(self) -> str:
        """The server's stderr so far: its log."""
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def output(self) -> str:
        """The end of the server's log, for failure messages."""
        return self.log()[-3000:]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _read_admin_key(stdout: Any, found: list[str], done: threading.Event) -> None:
    for line in stdout:
        match = KEY_LINE.match(line)
        if match and not found:
            found.append(match.group(1))
            done.set()
    done.set()  # the server exited before printing a key


@contextmanager
def live_server(database_url: str, *, access_log: bool = False, **settings: str) -> Iterator[LiveServer]:
    """A server on an empty database `database_url`; `settings` are extra environment variables."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "SMARTER_CORE_LOG_LEVEL": "warning", **settings}
    env.pop("SMARTER_CORE_ADMIN_PASSWORD", None)
    env = {**support.secrets_env(database_url), **env}  # `serve` refuses PostgreSQL without a secrets key
    stderr = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)),
            "--access-log" if access_log else "--no-access-log",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    found: list[str] = []
    printed = threading.Event()
    reader = threading.Thread(target=_read_admin_key, args=(process.stdout, found, printed), daemon=True)
    reader.start()
    try:
        printed.wait(START_TIMEOUT)
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT
        ready = False
        while found and not ready and time.monotonic() < deadline and process.poll() is None:
            try:
                ready = httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200
            except httpx.TransportError:
                time.sleep(0.1)
        server = LiveServer(base_url=base_url, admin_key=found[0] if found else "", stderr=stderr)
        if not ready:
            pytest.fail(f"The server did not start: {server.output()}")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=5)
        if process.stdout is not None:
            process.stdout.close()
        # The server's log is part of the run's logs (stdout is not: it prints the admin key by design).
        stderr.seek(0)
        SCANNER.check(f"live server on port {port} (stderr)", stderr.read().decode(errors="replace"))
        stderr.close()
