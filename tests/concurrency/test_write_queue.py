"""Concurrent writes queue, on SQLite too: one success and 409s (or updates), never a 503 for a lock.

On SQLite a writer's transaction begins with BEGIN IMMEDIATE after the process's previous writer is done
(`app.db._WriteTurns`); another process's writer is waited for by SQLite's busy handler. A write answers 503
only when its wait exceeds `SMARTER_CORE_DB_POOL_TIMEOUT`; readers never wait for a writer. The races run
on both databases; the lock-holding tests are SQLite's (PostgreSQL has no database-wide write lock).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from app.main import create_app
from app.models import AccountContact, ApiKey, PluginMeta, User, UserProfile
from app.runtime import Runtime
from tests import support
from tests.support import World

RACERS = 20
PLUGINS = "/api/v1/plugins/"
USERS = "/api/v1/accounts/users/"
ACCOUNTS = "/api/v1/accounts/"
APPLY = "/api/v1/cli/apply/"


async def count(runtime: Runtime, source: Any, *where: Any) -> int:
    async with runtime.sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(source).where(*where))).scalar_one())


def statuses(responses: list[httpx.Response]) -> list[int]:
    return sorted(r.status_code for r in responses)


def described(responses: list[httpx.Response]) -> list[tuple[int, str]]:
    return [(r.status_code, r.text[:200]) for r in responses]


async def test_identical_clones(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    headers = world["staff_a"].headers
    source = await client.post(PLUGINS, json={"name": "original"}, headers=headers)
    assert source.status_code == 201, source.text
    url = f"{PLUGINS}{source.json()['id']}/clone/"
    responses = await asyncio.gather(*(client.post(url, json={"name": "copy"}, headers=headers) for _ in range(RACERS)))
    assert statuses(responses) == [201] + [409] * (RACERS - 1), described(responses)
    assert await count(runtime, PluginMeta, PluginMeta.name == "copy") == 1


def token_manifest(description: str) -> str:
    document = {
        "apiVersion": "smarter.sh/v1",
        "kind": "SmarterAuthToken",
        "metadata": {"name": "raced_token", "description": description, "version": "1.0.0"},
        "spec": {"config": {"isActive": True, "username": "staff_a"}},
    }
    return yaml.safe_dump(document)


async def test_identical_token_manifests(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    """One racer creates the key (and alone is shown it); every other one either updates it, as applying an
    existing manifest does (SQLite: the writers queued behind the creator), or, racing the creator's
    uncommitted row, is a 409 (PostgreSQL: the unique constraint decided). Never a 503."""
    headers = {**world["staff_a"].headers, "content-type": "application/x-yaml"}
    body = token_manifest("raced")
    responses = await asyncio.gather(*(client.post(APPLY, content=body, headers=headers) for _ in range(RACERS)))
    assert set(statuses(responses)) <= {200, 409}, described(responses)
    created = [r for r in responses if r.status_code == 200 and "key" in r.json()["data"]]
    assert len(created) == 1, described(responses)
    if runtime.engine.dialect.name == "sqlite":
        assert statuses(responses) == [200] * RACERS, described(responses)
    assert await count(runtime, ApiKey, ApiKey.name == "raced_token") == 1


async def test_users_created_at_once_in_a_new_account(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    """The first member of a new account becomes its primary contact: ten creates compete for that slot."""
    headers = world["superuser"].headers
    made = await client.post(ACCOUNTS, json={"name": "fresh", "companyName": "Fresh"}, headers=headers)
    assert made.status_code == 201, made.text
    number, account_id = made.json()["accountNumber"], made.json()["id"]
    bodies = [{"username": f"newcomer_{n}", "email": f"n{n}@example.com", "accountNumber": number} for n in range(10)]
    bodies += [{"username": "newcomer_0", "email": "again@example.com", "accountNumber": number}]
    responses = await asyncio.gather(*(client.post(USERS, json=body, headers=headers) for body in bodies))
    assert statuses(responses) == [201] * 10 + [409], described(responses)
    assert await count(runtime, UserProfile, UserProfile.account_id == account_id) == 10
    assert await count(runtime, User, User.username == "newcomer_0") == 1
    primary = (AccountContact.account_id == account_id, AccountContact.is_primary)
    assert await count(runtime, AccountContact, *primary) == 1


async def test_forty_different_creates(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    headers = world["regular_a"].headers
    responses = await asyncio.gather(
        *(client.post(PLUGINS, json={"name": f"many_{n}"}, headers=headers) for n in range(40))
    )
    assert statuses(responses) == [201] * 40, described(responses)
    assert await count(runtime, PluginMeta, PluginMeta.name.like("many_%")) == 40


# --- waiting for the write lock (SQLite) -------------------------------------------------------------------

TIMEOUT = 1.0


@pytest.fixture
async def impatient(runtime: Runtime) -> AsyncIterator[FastAPI]:
    """A second app on the same database whose waits end after TIMEOUT seconds."""
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's database-wide write lock")
    other = create_app(support.test_settings(runtime.settings.database_url, db_pool_timeout=TIMEOUT))
    async with other.router.lifespan_context(other):
        yield other


@asynccontextmanager
async def writer_of_this_process(app: FastAPI) -> AsyncIterator[None]:
    """A unit of work of the app that has begun writing and not committed: it holds the process's turn."""
    runtime: Runtime = app.state.runtime
    async with runtime.writer_sessionmaker() as session:
        await session.execute(text("SELECT 1"))
        yield
        await session.rollback()


@contextmanager
def writer_of_another_process(runtime: Runtime, seconds: float) -> Iterator[None]:
    """Another connection (as the CLI's would be) holds SQLite's write lock for `seconds`."""
    path = make_url(runtime.settings.database_url).database
    assert path
    holding = threading.Event()

    def hold() -> None:
        connection = sqlite3.connect(path, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            holding.set()
            time.sleep(seconds)
            connection.execute("ROLLBACK")
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert holding.wait(10)
    try:
        yield
    finally:
        thread.join()


async def timed_create(app: FastAPI, world: World, name: str) -> tuple[httpx.Response, float]:
    async with support.client_for(app) as http:
        started = time.monotonic()
        response = await http.post(PLUGINS, json={"name": name}, headers=world["staff_a"].headers)
        return response, time.monotonic() - started


async def test_a_write_fails_only_after_waiting_longer_than_the_pool_timeout(
    impatient: FastAPI, world: World, runtime: Runtime
) -> None:
    async with writer_of_this_process(impatient):
        response, waited = await timed_create(impatient, world, "in_process")
    assert response.status_code == 503, response.text
    assert response.json()["type"] == "urn:smarter-core:problem:service-unavailable"
    assert waited >= TIMEOUT
    with writer_of_another_process(runtime, 2.5 * TIMEOUT):
        response, waited = await timed_create(impatient, world, "other_process")
    assert response.status_code == 503, response.text
    assert waited >= TIMEOUT
    assert await count(runtime, PluginMeta) == 0
    # Nothing was left holding the turn: the next write goes through.
    response, _ = await timed_create(impatient, world, "after")
    assert response.status_code == 201, response.text


async def test_a_write_waits_for_a_shorter_lock(impatient: FastAPI, world: World, runtime: Runtime) -> None:
    with writer_of_another_process(runtime, 0.3 * TIMEOUT):
        response, _ = await timed_create(impatient, world, "patient")
    assert response.status_code == 201, response.text

    async with writer_of_this_process(impatient):
        pending = asyncio.create_task(timed_create(impatient, world, "queued"))
        await asyncio.sleep(0.3 * TIMEOUT)  # the request waits for this writer's turn, then takes its own
    response, _ = await pending
    assert response.status_code == 201, response.text


async def test_readers_do_not_wait_for_a_writer(impatient: FastAPI, world: World, runtime: Runtime) -> None:
    """Reads (GET, and the manifest API's POST reads) answer while a writer holds the lock past the timeout."""
    headers = world["staff_a"].headers
    async with writer_of_this_process(impatient), support.client_for(impatient) as http:
        await asyncio.sleep(1.5 * TIMEOUT)  # a reader queued behind the writer would now be past its timeout
        reads = await asyncio.gather(
            http.get(PLUGINS, headers=headers),
            http.post("/api/v1/cli/get/plugin/", headers=headers),
            http.post("/api/v1/cli/whoami/", headers=headers),
        )
    assert [r.status_code for r in reads] == [200, 200, 200], described(list(reads))
