"""A PostgreSQL outage under traffic, on a throwaway cluster of the test's own.

`initdb` into a temporary directory, a server on a free port, `smarter-core serve` on it; the cluster is
stopped (immediate shutdown, like a crash) while requests are in flight, then started again. During the
outage every answer is a prompt 503 (problem+json on REST, the journal error on /api/v1/cli/), never a 500
or a hang; afterwards the same server process serves again, and no write it acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.live import free_port, live_server

# Runs with the PostgreSQL suite (`make test-postgres`): a machine without PostgreSQL has no initdb either.
pytestmark = [pytest.mark.postgres_only, pytest.mark.slow]

# Bounds, not latency targets: a request that takes longer than this during the outage hung.
REQUEST_BOUND = 20.0
RECOVERY_DEADLINE = 60.0
ADMIN_HEADER = "Authorization"


@dataclass
class Cluster:
    """A PostgreSQL cluster in a temporary directory, run as the `postgres` OS user when we are root."""

    bindir: Path
    root: Path
    port: int
    as_user: list[str] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = [*self.as_user, str(self.bindir / tool), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stdout[-1000:]}{done.stderr[-1000:]}")

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-o", options, "-w", "start")

    def stop(self, mode: str = "immediate") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")


def _postgres_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    bindir = _postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="smarter-core-outage-"))
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as the postgres user")
        shutil.chown(root, user="postgres", group="postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    server = Cluster(bindir=bindir, root=root, port=free_port(), as_user=as_user)
    try:
        server.init()
        server.start()
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Traffic:
    """What the load saw: every status, and the names of the keys whose creation was acknowledged."""

    statuses: list[int] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    warmed: asyncio.Event = field(default_factory=asyncio.Event)  # enough writes acknowledged before the crash


async def _drive(client: httpx.AsyncClient, traffic: Traffic, stop: asyncio.Event, label: str) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        name = f"{label}_{n}"
        created = await client.post("/api/v1/api-keys/", json={"name": name})
        traffic.statuses.append(created.status_code)
        (traffic.created if created.status_code == 201 else traffic.refused).append(name)
        if len(traffic.created) >= 8:
            traffic.warmed.set()
        listed = await client.get("/api/v1/plugins/")
        traffic.statuses.append(listed.status_code)
        await asyncio.sleep(0.02)


def assert_problem_503(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 503


async def stored_key_names(cluster: Cluster) -> set[str]:
    conn = await asyncpg.connect(cluster.url.replace("+asyncpg", ""))
    try:
        rows = await conn.fetch("SELECT name, digest, token_key FROM api_key")
    finally:
        await conn.close()
    # Nothing half-written: every stored key is complete.
    assert all(row["digest"] and row["token_key"] for row in rows)
    return {row["name"] for row in rows}


async def test_outage_mid_traffic_then_recovery_without_restart(cluster: Cluster) -> None:
    settings = {
        "SMARTER_CORE_DB_POOL_TIMEOUT": "2",
        "SMARTER_CORE_DB_CONNECT_TIMEOUT": "2",
        "SMARTER_CORE_DB_COMMAND_TIMEOUT": "3",
        "SMARTER_CORE_LISTEN_PROBE_INTERVAL": "1",
        "SMARTER_CORE_LISTEN_BACKOFF_MAX": "1",
    }
    with live_server(cluster.url, **settings) as server:
        headers = {ADMIN_HEADER: f"Token {server.admin_key}"}
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=REQUEST_BOUND) as client:
            traffic = Traffic()
            stop = asyncio.Event()
            drivers = [asyncio.create_task(_drive(client, traffic, stop, f"load{i}")) for i in range(4)]
            await asyncio.wait_for(traffic.warmed.wait(), timeout=RECOVERY_DEADLINE)  # the load really runs
            await asyncio.to_thread(cluster.stop)  # mid-traffic
            await asyncio.sleep(2)
            stop.set()
            await asyncio.gather(*drivers)
            assert traffic.refused, "no request met the outage"
            assert set(traffic.statuses) <= {200, 201, 503}, server.output()

            # The outage, route by route: prompt 503s in each protocol's error shape.
            assert (await client.get("/readyz")).status_code == 503
            assert (await client.get("/healthz")).status_code == 200  # the process itself is alive
            assert_problem_503(await client.get("/api/v1/plugins/"))
            assert_problem_503(await client.post("/api/v1/api-keys/", json={"name": "during"}))
            # A key never seen before cannot be checked without the database: 503, not a 401.
            unknown = {ADMIN_HEADER: "Token " + "ab" * 32}
            assert_problem_503(await client.get("/api/v1/accounts/", headers=unknown))
            journal = await client.post("/api/v1/cli/get/plugins/")
            assert journal.status_code == 503
            body: dict[str, Any] = journal.json()
            assert body["error"]["status"] == 503
            assert body["metadata"]["command"] == "get"

            await asyncio.to_thread(cluster.start)
            # The same process, not restarted, serves again once its pool reconnects.
            deadline = asyncio.get_running_loop().time() + RECOVERY_DEADLINE
            while (await client.get("/readyz")).status_code != 200:
                assert asyncio.get_running_loop().time() < deadline, server.output()
                await asyncio.sleep(0.2)
            listed = await client.get("/api/v1/plugins/")
            assert listed.status_code == 200, listed.text
            after = await client.post("/api/v1/api-keys/", json={"name": "after_outage"})
            assert after.status_code == 201, after.text
            new_key = after.json()["key"]
            fresh = await client.get("/api/v1/accounts/", headers={ADMIN_HEADER: f"Token {new_key}"})
            assert fresh.status_code == 200, fresh.text
            journal = await client.post("/api/v1/cli/get/plugins/")
            assert journal.status_code == 200, journal.text

        # Every error was answered by the app: none reached the server (which would log a traceback and
        # drop the client's connection instead of keeping it alive).
        log = server.log()
        assert "Exception in ASGI application" not in log, log[log.find("Exception in ASGI") :][:3000]

    # Every acknowledged write survived the crash.
    stored = await stored_key_names(cluster)
    assert set(traffic.created) | {"after_outage"} <= stored
    assert "during" not in stored
