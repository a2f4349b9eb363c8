"""Real races, decided by the database, through the real app (SQLite and PostgreSQL).

Every request is a real HTTP request to the app (httpx over ASGITransport). `asyncio.gather` runs them as
concurrent tasks of one event loop; each request's unit of work takes its own pooled connection, so their
transactions really overlap in PostgreSQL, where only the constraints (unique keys, partial unique indexes)
can decide who wins. Each create race records how many pooled connections were checked out at once and
asserts the racers overlapped (all 20 at once, in practice). The shared test settings' pool is exactly 20
(10 + 10 overflow), so this package's conftest gives its app a bigger one: the pool never orders the
racers. One race is also split across two app instances (two engines, two caches: two workers' worth),
so nothing in-process could be what serialises it.

Also here: a real deadlock answers a retryable 503 (never a 500), and revoking a key while requests
authenticate with it (the principal cache's single flight must not store what a load read before the
revocation committed).

On SQLite the writers take turns (`app.db._WriteTurns`: BEGIN IMMEDIATE, one writer of the process at a
time, another process's writer waited for by SQLite): the racers still overlap (each holds a pooled
connection while it waits for its turn) and must still end as one success and 409s, never a 503. The
deadlock test is PostgreSQL's alone (SQLite writers cannot deadlock).

Outcomes asserted, never timings: exactly one success, every other racer a 409 problem+json naming the field,
exactly one row (counted with a query), nothing half-written (the winner's parts, and only the winner's).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, func, select
from sqlalchemy.engine import make_url

from app.main import create_app
from app.models import (
    Account,
    AccountContact,
    ApiKey,
    Base,
    PluginDataStatic,
    PluginMeta,
    PluginPrompt,
    PluginSelector,
    Tag,
    User,
    UserProfile,
)
from app.runtime import Runtime
from app.services import keys, principals
from app.services.principals import Principal
from tests import support
from tests.support import World, auth

RACERS = 20
ROUNDS = 20
PROBLEM_JSON = "application/problem+json"

ACCOUNTS = "/api/v1/accounts/"
USERS = "/api/v1/accounts/users/"
CONTACTS = "/api/v1/accounts/contacts/"
PLUGINS = "/api/v1/plugins/"
API_KEYS = "/api/v1/api-keys/"
# Authenticated probes for the revocation races: one with a unit of work (a session), one without.
PROBES = ("/api/v1/api-keys/", "/api/v1/cli/version/")

PLUGIN_TAGS = Base.metadata.tables["plugin_meta_tag"]
API_KEY_TAGS = Base.metadata.tables["api_key_tag"]
ACCOUNT_TAGS = Base.metadata.tables["account_tag"]


# --- helpers ----------------------------------------------------------------------------------------------


async def count(runtime: Runtime, source: Any, *where: Any) -> int:
    async with runtime.sessionmaker() as session:
        statement = select(func.count()).select_from(source).where(*where)
        return int((await session.execute(statement)).scalar_one())


async def scalars(runtime: Runtime, statement: Any) -> list[Any]:
    async with runtime.sessionmaker() as session:
        return list((await session.execute(statement)).scalars().all())


@dataclass
class PoolUse:
    """Connections of the app's pool checked out at once (now, and at most)."""

    current: int = 0
    peak: int = 0


@contextmanager
def pool_use(runtime: Runtime) -> Iterator[PoolUse]:
    use = PoolUse()

    def checkout(*_: Any) -> None:
        use.current += 1
        use.peak = max(use.peak, use.current)

    def checkin(*_: Any) -> None:
        use.current -= 1

    # A create on PostgreSQL is one statement on a connection of the runtime's reader (`write_alone`).
    reader = runtime.reader
    rows = reader.rows

    async def counted(read: Any, values: Any) -> Any:
        checkout()
        try:
            return await rows(read, values)
        finally:
            checkin()

    target = runtime.engine.sync_engine
    event.listen(target, "checkout", checkout)
    event.listen(target, "checkin", checkin)
    reader.rows = counted  # type: ignore[method-assign]
    try:
        yield use
    finally:
        event.remove(target, "checkout", checkout)
        event.remove(target, "checkin", checkin)
        del reader.rows  # the class's again


async def race(
    runtime: Runtime, requests: Sequence[Awaitable[httpx.Response]], *, on_this_app: int | None = None
) -> list[httpx.Response]:
    """Run `requests` concurrently; they must have overlapped in the database.

    `on_this_app` racers (default: all) go through `runtime`'s app: at least half of them must have held a
    connection of its pool (or its reader's) at the same moment (in practice all of them do: the losers wait in
    PostgreSQL for the winner's uncommitted row, each on its own connection).
    """
    with pool_use(runtime) as use:
        responses = list(await asyncio.gather(*requests))
    racers = len(requests) if on_this_app is None else on_this_app
    assert use.peak >= max(2, racers // 2), f"only {use.peak} connections at once: the racers barely overlapped"
    return responses


def describe(responses: Sequence[httpx.Response]) -> list[tuple[int, str]]:
    return [(r.status_code, r.text[:300]) for r in responses]


def assert_one_winner(responses: Sequence[httpx.Response], success: int, field: str) -> httpx.Response:
    """Exactly one `success`, every other racer a 409 problem+json naming `field`; returns the winner."""
    statuses = sorted(r.status_code for r in responses)
    assert statuses == sorted([success] + [409] * (len(responses) - 1)), describe(responses)
    losers = [r for r in responses if r.status_code == 409]
    for loser in losers:
        assert loser.headers["content-type"].startswith(PROBLEM_JSON), loser.headers
        body = loser.json()
        assert body["type"] == "urn:smarter-core:problem:conflict"
        assert body["title"] == "Conflict"
        assert body["status"] == 409
        assert isinstance(body["detail"], str)
        assert body["detail"]
        assert [(e["loc"], e["type"]) for e in body["errors"]] == [(["body", field], "unique")], body
        assert "key" not in body
    assert len({loser.json()["detail"] for loser in losers}) == 1  # one sentence for one constraint
    return next(r for r in responses if r.status_code == success)


# --- plugins: one name per account -----------------------------------------------------------------------


def plugin_body(n: int) -> dict[str, Any]:
    """The same name for every racer; everything else says which racer wrote it."""
    return {
        "name": "Race Plugin",  # normalised to race_plugin
        "description": f"racer {n}",
        "tags": ["race", f"racer_{n}"],
        "prompt": {"systemRole": f"You are racer {n}.", "temperature": 0.25},
        "selector": {"directive": "search_terms", "searchTerms": [f"term_{n}"]},
        "data": {"description": f"Data of racer {n}.", "staticData": {"racer": n}},
    }


@pytest.mark.parametrize("instances", [1, 2], ids=["one-app", "two-apps"])
async def test_plugins_of_one_name(
    client: httpx.AsyncClient, world: World, runtime: Runtime, database_url: str, instances: int
) -> None:
    async with AsyncExitStack() as stack:
        clients = [client]
        if instances == 2:
            other: FastAPI = create_app(support.test_settings(database_url))
            await stack.enter_async_context(other.router.lifespan_context(other))
            clients.append(await stack.enter_async_context(support.client_for(other)))
        headers = world["regular_a"].headers  # any member may create plugins
        responses = await race(
            runtime,
            [clients[n % instances].post(PLUGINS, json=plugin_body(n), headers=headers) for n in range(RACERS)],
            on_this_app=RACERS // instances,
        )
    winner = assert_one_winner(responses, 201, "name").json()
    n = int(winner["description"].removeprefix("racer "))
    assert winner["name"] == "race_plugin"

    # One plugin, and one set of parts: all of them the winner's.
    assert await count(runtime, PluginMeta) == 1
    where = (PluginMeta.account_id == world.account_a.id, PluginMeta.name == "race_plugin")
    assert await count(runtime, PluginMeta, *where) == 1
    async with runtime.sessionmaker() as session:
        plugin = (await session.execute(select(PluginMeta).where(*where))).scalar_one()
        assert (plugin.id, plugin.description) == (winner["id"], f"racer {n}")
        assert plugin.user_profile_id == world["regular_a"].profile.id
        prompts = (await session.execute(select(PluginPrompt))).scalars().all()
        selectors = (await session.execute(select(PluginSelector))).scalars().all()
        data = (await session.execute(select(PluginDataStatic))).scalars().all()
    assert [(p.plugin_id, p.system_role, p.temperature) for p in prompts] == [(plugin.id, f"You are racer {n}.", 0.25)]
    assert [(s.plugin_id, s.directive, s.search_terms) for s in selectors] == [
        (plugin.id, "search_terms", [f"term_{n}"])
    ]
    assert [(d.plugin_id, d.description, d.static_data) for d in data] == [
        (plugin.id, f"Data of racer {n}.", {"racer": n})
    ]
    # The losers' own tags were rolled back with them; the shared one exists once.
    assert sorted(await scalars(runtime, select(Tag.name))) == ["race", f"racer_{n}"]
    assert await count(runtime, PLUGIN_TAGS) == 2
    assert sorted(winner["tags"]) == ["race", f"racer_{n}"]


async def test_plugins_with_the_same_new_tags_in_any_order(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    """Different plugins sharing new tags, listed in opposite orders: the tag key is taken once, no deadlock."""
    names = [f"t{n}" for n in range(6)]
    bodies = [{"name": f"tagged_{n}", "tags": names if n % 2 else names[::-1]} for n in range(RACERS)]
    headers = world["staff_a"].headers
    responses = await race(runtime, [client.post(PLUGINS, json=body, headers=headers) for body in bodies])
    assert [r.status_code for r in responses] == [201] * RACERS, describe(responses)
    assert sorted(await scalars(runtime, select(Tag.name))) == names
    assert await count(runtime, PluginMeta) == RACERS
    assert await count(runtime, PLUGIN_TAGS) == RACERS * len(names)


@pytest.mark.postgres_only
async def test_a_deadlock_is_a_retryable_503_never_a_500(
    client: httpx.AsyncClient, world: World, runtime: Runtime, database_url: str
) -> None:
    """A real deadlock between a request and another writer: PostgreSQL fails the request's transaction.

    The other writer (a raw connection, as another service would be) inserts tag `dl_b` and holds it; the
    request inserts `dl_a`, then waits for `dl_b`; the other writer then inserts `dl_a`: a cycle. The other
    writer's `deadlock_timeout` is long, so the request's backend is the one that detects it and aborts.
    """
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    other = await asyncpg.connect(dsn)
    try:
        await other.execute("SET deadlock_timeout = '60s'")
        transaction = other.transaction()
        await transaction.start()
        await other.execute("INSERT INTO tag (name) VALUES ('dl_b')")
        body = {"name": "deadlocked", "tags": ["dl_a", "dl_b"]}
        request = asyncio.create_task(client.post(PLUGINS, json=body, headers=world["staff_a"].headers))
        waiting = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'smarter-core' AND wait_event_type = 'Lock'"
        )
        async with asyncio.timeout(30):  # a guard against hanging, not a timing assertion
            while True:
                if await other.fetchval(waiting):
                    break
                await asyncio.sleep(0.01)
        await other.execute("INSERT INTO tag (name) VALUES ('dl_a') ON CONFLICT DO NOTHING")
        response = await request
        await transaction.rollback()
    finally:
        await other.close()
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["type"] == "urn:smarter-core:problem:service-unavailable"
    assert await count(runtime, PluginMeta) == 0
    assert await count(runtime, Tag) == 0
    # Retried, it succeeds.
    retried = await client.post(PLUGINS, json=body, headers=world["staff_a"].headers)
    assert retried.status_code == 201, retried.text
    assert sorted(retried.json()["tags"]) == ["dl_a", "dl_b"]


# --- users: one username -----------------------------------------------------------------------------------


async def test_users_of_one_username(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    users_before = await count(runtime, User)
    bodies = [{"username": "racer", "email": "racer@example.com", "firstName": f"R{n}"} for n in range(RACERS)]
    headers = world["staff_a"].headers
    responses = await race(runtime, [client.post(USERS, json=body, headers=headers) for body in bodies])
    winner = assert_one_winner(responses, 201, "username").json()

    assert await count(runtime, User) == users_before + 1
    assert await count(runtime, User, User.username == "racer") == 1
    # The user came with one profile (in staff_a's account) and one contact, the winner's.
    profiles = await scalars(runtime, select(UserProfile.account_id).where(UserProfile.user_id == winner["id"]))
    assert profiles == [world.account_a.id]
    contacts = await scalars(runtime, select(AccountContact).where(AccountContact.email == "racer@example.com"))
    assert [(c.account_id, c.first_name) for c in contacts] == [(world.account_a.id, winner["firstName"])]


# --- contacts: one primary per account, one email per account -------------------------------------------


def contact_body(n: int, **changes: Any) -> dict[str, Any]:
    return {"firstName": f"C{n}", "lastName": "Racer", "email": f"c{n}@example.com", **changes}


async def test_contacts_one_primary_per_account(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    headers = world["staff_a"].headers
    # The account's first member is its primary contact: demote it, so that the racers compete for the slot.
    primary = (
        await scalars(
            runtime,
            select(AccountContact.id).where(AccountContact.account_id == world.account_a.id, AccountContact.is_primary),
        )
    )[0]
    demoted = await client.patch(f"{CONTACTS}{primary}/", json={"isPrimary": False}, headers=headers)
    assert demoted.status_code == 200, demoted.text
    before = await count(runtime, AccountContact)

    bodies = [contact_body(n, isPrimary=True) for n in range(RACERS)]  # different emails: only the slot is shared
    responses = await race(runtime, [client.post(CONTACTS, json=body, headers=headers) for body in bodies])
    winner = assert_one_winner(responses, 201, "isPrimary").json()

    assert await count(runtime, AccountContact) == before + 1
    where = (AccountContact.account_id == world.account_a.id, AccountContact.is_primary)
    assert await scalars(runtime, select(AccountContact.email).where(*where)) == [winner["email"]]


async def test_contacts_one_email_per_account(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    before = await count(runtime, AccountContact)
    bodies = [contact_body(n, email="same@example.com") for n in range(RACERS)]
    headers = world["staff_a"].headers
    responses = await race(runtime, [client.post(CONTACTS, json=body, headers=headers) for body in bodies])
    winner = assert_one_winner(responses, 201, "email").json()

    assert await count(runtime, AccountContact) == before + 1
    rows = await scalars(runtime, select(AccountContact).where(AccountContact.email == "same@example.com"))
    assert [(c.account_id, c.first_name) for c in rows] == [(world.account_a.id, winner["firstName"])]


# --- API keys: one name per owner profile -------------------------------------------------------------------


async def test_api_keys_of_one_name(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    before = await count(runtime, ApiKey)
    bodies = [{"name": "Race Key", "description": f"racer {n}", "tags": [f"key_racer_{n}"]} for n in range(RACERS)]
    headers = world["staff_a"].headers
    responses = await race(runtime, [client.post(API_KEYS, json=body, headers=headers) for body in bodies])
    winner = assert_one_winner(responses, 201, "name").json()
    n = int(winner["description"].removeprefix("racer "))

    assert await count(runtime, ApiKey) == before + 1
    where = (ApiKey.user_profile_id == world["staff_a"].profile.id, ApiKey.name == "race_key")
    rows = await scalars(runtime, select(ApiKey).where(*where))
    assert [(k.id, k.description, k.is_active) for k in rows] == [(winner["id"], f"racer {n}", True)]
    assert await count(runtime, API_KEY_TAGS) == 1
    assert await scalars(runtime, select(Tag.name)) == [f"key_racer_{n}"]
    # The one plaintext handed out is the stored key's, and it works.
    assert keys.digest_of(winner["key"]) == rows[0].digest
    assert (await client.get(API_KEYS, headers=auth(winner["key"]))).status_code == 200


# --- accounts: at most one default ------------------------------------------------------------------------
#
# Two races, both decided by the partial unique index `uq_account_single_default` alone:
# - 20 PATCHes making 20 *different* existing accounts the default. This is the telling one: the writers
#   touch different rows, so no row lock orders them, and a check-then-write ("is there a default yet?")
#   would let all of them through under READ COMMITTED. Only the index can refuse nineteen of them.
# - 20 POSTs of new accounts with isDefaultAccount=true (different names, so only the default slot is
#   shared): each loser must leave no account (nor its tags) behind.


async def updated_at(runtime: Runtime, ids: list[int]) -> dict[int, Any]:
    async with runtime.sessionmaker() as session:
        rows = await session.execute(select(Account.id, Account.updated_at).where(Account.id.in_(ids)))
        return dict(rows.all())


async def make_room_for_a_default(client: httpx.AsyncClient, world: World) -> None:
    """The platform account is the default: un-default it first."""
    url = f"{ACCOUNTS}{world.platform.id}/"
    response = await client.patch(url, json={"isDefaultAccount": False}, headers=world["superuser"].headers)
    assert response.status_code == 200, response.text


async def test_default_account_by_concurrent_patches(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    headers = world["superuser"].headers
    await make_room_for_a_default(client, world)
    ids = []
    for n in range(RACERS):
        created = await client.post(ACCOUNTS, json={"name": f"patched_{n}", "companyName": "P"}, headers=headers)
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    assert await count(runtime, Account, Account.is_default_account) == 0
    stamps = await updated_at(runtime, ids)

    responses = await race(
        runtime,
        [client.patch(f"{ACCOUNTS}{id_}/", json={"isDefaultAccount": True}, headers=headers) for id_ in ids],
    )
    winner = assert_one_winner(responses, 200, "isDefaultAccount").json()
    assert winner["isDefaultAccount"] is True
    assert await scalars(runtime, select(Account.id).where(Account.is_default_account)) == [winner["id"]]
    # The losers' rows are untouched (their updates were rolled back).
    after = await updated_at(runtime, ids)
    assert [id_ for id_ in ids if after[id_] != stamps[id_]] == [winner["id"]]


async def test_default_account_by_concurrent_creates(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    headers = world["superuser"].headers
    await make_room_for_a_default(client, world)
    before = await count(runtime, Account)
    bodies = [
        {"name": f"default_{n}", "companyName": "D", "isDefaultAccount": True, "tags": [f"default_{n}"]}
        for n in range(RACERS)
    ]
    responses = await race(runtime, [client.post(ACCOUNTS, json=body, headers=headers) for body in bodies])
    winner = assert_one_winner(responses, 201, "isDefaultAccount").json()

    assert await count(runtime, Account) == before + 1
    assert await scalars(runtime, select(Account.name).where(Account.is_default_account)) == [winner["name"]]
    assert await count(runtime, ACCOUNT_TAGS) == 1
    assert await scalars(runtime, select(Tag.name)) == [winner["name"]]


# --- revoking a key while requests authenticate with it ------------------------------------------------------
#
# The principal cache loads a key's principal once for all concurrent misses (single flight). A load that
# read the key before a revocation committed may finish after it: it may serve the requests that were
# waiting for it (they authenticated before the revocation, a valid order), but it must not store its
# "active" principal, or the key would keep working until the TTL. The revocation's commit drops the
# cached entry *and* detaches the in-flight load (app/caching/registry.py), so a request arriving after the
# revocation starts a fresh load instead of joining the stale one.

REVOKE = {
    "deactivate": ("POST", "{id}/deactivate/", 200),
    "delete": ("DELETE", "{id}/", 204),
}


async def new_key(client: httpx.AsyncClient, world: World, name: str) -> tuple[int, str]:
    """A fresh named key of staff_a (its principal not cached yet): (id, plaintext)."""
    response = await client.post(API_KEYS, json={"name": name}, headers=world["staff_a"].headers)
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()["key"]


async def revoke(client: httpx.AsyncClient, world: World, action: str, key_id: int) -> None:
    method, path, status = REVOKE[action]
    url = API_KEYS + path.format(id=key_id)
    response = await client.request(method, url, headers=world["staff_a"].headers)  # with staff_a's own key
    assert response.status_code == status, response.text


def cached(runtime: Runtime, key: str) -> Principal | None:
    return principals.principal_cache(runtime.caches).peek(keys.digest_of(key))


async def assert_revoked(client: httpx.AsyncClient, runtime: Runtime, action: str, key_id: int, key: str) -> None:
    """In the database the key is inactive (or gone); nothing cached says it is active; it gets only 401s."""
    rows = await scalars(runtime, select(ApiKey.is_active).where(ApiKey.id == key_id))
    assert rows == ([False] if action == "deactivate" else [])
    stale = cached(runtime, key)
    assert stale is None or not stale.key_active, "an in-flight load cached the revoked key as active"
    later = await asyncio.gather(*(client.get(PROBES[n % 2], headers=auth(key)) for n in range(RACERS)))
    for response in later:
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Token"
    stale = cached(runtime, key)
    assert stale is None or not stale.key_active
    rows = await scalars(runtime, select(ApiKey.is_active).where(ApiKey.id == key_id))
    assert rows == ([False] if action == "deactivate" else [])  # no request re-activated (or re-created) it


@pytest.mark.parametrize("action", sorted(REVOKE))
async def test_a_load_in_flight_during_a_revocation_is_not_cached(
    client: httpx.AsyncClient, world: World, runtime: Runtime, monkeypatch: pytest.MonkeyPatch, action: str
) -> None:
    """The interleaving forced: the shared load reads the active key, the revocation commits, the load ends."""
    key_id, key = await new_key(client, world, "victim")
    digest = keys.digest_of(key)
    real_load: Callable[..., Awaitable[Principal | None]] = principals.load_principal
    has_read = asyncio.Event()
    may_return = asyncio.Event()
    loads = 0

    async def held_load(engine: Any, wanted: str) -> Principal | None:
        """The real load (real queries); the first one of the victim key is held after it read the rows."""
        nonlocal loads
        principal = await real_load(engine, wanted)
        if wanted == digest:
            loads += 1
            if loads == 1:
                has_read.set()
                await may_return.wait()
        return principal

    monkeypatch.setattr(principals, "load_principal", held_load)
    in_flight = [asyncio.create_task(client.get(PROBES[n % 2], headers=auth(key))) for n in range(RACERS)]
    try:
        await asyncio.wait_for(has_read.wait(), timeout=30)  # a guard against hanging, not a timing assertion
        await revoke(client, world, action, key_id)
        # Arriving after the revocation: a fresh load (not the held, stale one), so a 401 right away. A cache
        # that let it join the held load would never answer it before the load is released.
        after = await asyncio.wait_for(client.get(PROBES[0], headers=auth(key)), timeout=30)
        assert after.status_code == 401, after.text
    finally:
        may_return.set()
        responses = await asyncio.gather(*in_flight)
    # The requests that were waiting for the held load authenticated before the revocation: 200 (one of them
    # at least, the one that started it); any that arrived after the revocation got a fresh load: 401.
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 401}, describe(responses)
    assert 200 in statuses
    await assert_revoked(client, runtime, action, key_id, key)


# The statement that revokes the key, and how to spot it among the engine's statements.
REVOKING_SQL = {"deactivate": "UPDATE api_key SET is_active", "delete": "DELETE FROM api_key"}


# Where, inside the revocation's unit of work, the racers are released: before the n-th statement its
# connection runs counting from the UPDATE/DELETE (0: just before it; then the reload, the NOTIFY...), or
# (None, and whenever it runs fewer statements) as it commits.
RELEASE_POINTS: tuple[int | None, ...] = (0, 1, 2, 3, None)


@contextmanager
def release_inside_revocation(
    runtime: Runtime, action: str, point: int | None, signal: asyncio.Event
) -> Iterator[None]:
    since_revoking: dict[Any, int] = {}  # the revoking connection -> statements it ran since the UPDATE/DELETE

    def statement(conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        if conn in since_revoking:
            since_revoking[conn] += 1
        elif sql.startswith(REVOKING_SQL[action]):
            since_revoking[conn] = 0
        else:
            return
        if since_revoking[conn] == point:
            signal.set()

    def commit(conn: Any) -> None:  # fired before the COMMIT is sent
        if conn in since_revoking:
            signal.set()

    target = runtime.engine.sync_engine
    hooks = (("before_cursor_execute", statement), ("commit", commit))
    for name, hook in hooks:
        event.listen(target, name, hook)
    try:
        yield
    finally:
        for name, hook in hooks:
            event.remove(target, name, hook)


@pytest.mark.parametrize("action", sorted(REVOKE))
async def test_revocation_during_concurrent_authentications(
    client: httpx.AsyncClient, world: World, runtime: Runtime, action: str
) -> None:
    """20 rounds of free-running races: 20 authenticated requests with a key while it is revoked.

    Nothing is held: the racers are only *released* at a point inside the revocation (before one of the
    statements it runs from its UPDATE/DELETE on, or as it commits), so their authentications overlap its
    commit. The rounds cycle through those points, with the principal cold (the racers share one load, which
    may read the key before the commit and end after it) or warm (cache hits race the invalidation, and more
    requests run from the start).
    """
    shuffle = random.Random(f"revocation-{action}")
    for round_ in range(ROUNDS):
        warm, point = round_ % 2 == 1, RELEASE_POINTS[round_ // 2 % len(RELEASE_POINTS)]
        key_id, key = await new_key(client, world, f"victim_{round_}")
        if warm:
            assert (await client.get(PROBES[0], headers=auth(key))).status_code == 200
            assert cached(runtime, key) is not None
        released = asyncio.Event()

        async def authenticated(n: int, yields: int, released: asyncio.Event | None, key: str = key) -> httpx.Response:
            if released is not None:
                await released.wait()
            for _ in range(yields):
                await asyncio.sleep(0)
            return await client.get(PROBES[n % 2], headers=auth(key))

        racers = [authenticated(n, shuffle.randrange(4), released) for n in range(RACERS)]
        if warm:
            racers += [authenticated(n, shuffle.randrange(50), None) for n in range(RACERS // 2)]

        async def revocation(key_id: int = key_id, released: asyncio.Event = released) -> bool:
            await revoke(client, world, action, key_id)
            by_hook = released.is_set()
            released.set()  # never leave the racers waiting, even if the hooks missed the statement
            return by_hook

        with release_inside_revocation(runtime, action, point, released):
            responses, released_inside = await asyncio.gather(asyncio.gather(*racers), revocation())
        assert released_inside, f"the racers were not released inside the revocation ({point=})"
        # Each request authenticated either before the revocation committed (200) or after it (401).
        assert {r.status_code for r in responses} <= {200, 401}, describe(responses)
        await assert_revoked(client, runtime, action, key_id, key)
    # Every victim is revoked; staff_a's own key (used to revoke) still works.
    assert await count(runtime, ApiKey, ApiKey.name.like("victim_%"), ApiKey.is_active) == 0
    assert (await client.get(PROBES[0], headers=world["staff_a"].headers)).status_code == 200
