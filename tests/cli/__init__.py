"""Shared by the command-line tests: the console script, a background `serve`, the schema's revision."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app import db
from app.config import PROJECT_ROOT
from tests import support
from tests.auth.helpers import free_port

SMARTER_CORE = Path(sys.executable).parent / "smarter-core"


class Server:
    """`smarter-core serve` in the background (the real console script), its output in a file."""

    def __init__(self, url: str, log: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.log = log
        environment = {**os.environ, "DATABASE_URL": url, "SMARTER_CORE_LOG_LEVEL": "warning", **(env or {})}
        environment = {**support.secrets_env(url), **environment}  # PostgreSQL: `serve` needs a secrets key
        environment.pop("SMARTER_CORE_ADMIN_PASSWORD", None)
        self.sink = log.open("wb")
        self.process = subprocess.Popen(
            [str(SMARTER_CORE), "serve", "--port", str(self.port), "--no-access-log", *args],
            cwd=PROJECT_ROOT,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=self.sink,
            stderr=subprocess.STDOUT,
        )
        self.base = f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"serve exited early:\n{self.output()}"
            try:
                if httpx.get(self.base + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"serve did not become ready:\n{self.output()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.sink.close()


async def revision_of(url: str) -> str | None:
    engine = db.create_engine(support.test_settings(url))
    try:
        async with engine.connect() as conn:
            return await db.current_revision(conn)
    finally:
        await engine.dispose()
