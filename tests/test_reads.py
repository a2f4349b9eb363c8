"""`app.reads`: a driver read returns exactly what SQLAlchemy returns, and fails as the app expects.

On PostgreSQL a `Read` runs its SQL with asyncpg itself; these tests run every `Read` of the app both ways
on the same rows (parts missing, JSON, floats, timestamps, tags, NULLs) and compare. On SQLite a `Read` is
SQLAlchemy's execution, so the comparison holds trivially there and the failure tests are PostgreSQL-only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import bindparam, delete, event, select, text
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

from app import errors, reads
from app.identifiers import PLATFORM_ACCOUNT_NUMBER
from app.models import KIND_API_KEY, PluginPrompt, User
from app.reads import Read
from app.runtime import Runtime
from app.schemas.plugins import PluginCreate
from app.services import keys, plugins, principals
from tests.support import World, unit_of_work


async def via_sqlalchemy(runtime: Runtime, read: Read, values: dict[str, Any]) -> list[tuple[Any, ...]]:
    async with runtime.autocommit.connect() as connection:
        return [tuple(row) for row in (await connection.execute(read.statement, values)).all()]


async def assert_same_rows(runtime: Runtime, read: Read, values: dict[str, Any]) -> int:
    driver = [tuple(row) for row in await read.rows(runtime.autocommit, values)]
    assert driver == await via_sqlalchemy(runtime, read, values)
    return len(driver)


async def varied_plugins(runtime: Runtime, world: World) -> list[int]:
    """Plugins whose rows exercise every column type: tags, JSON, a missing part, a non-static class."""
    principal = await principals.authenticate(runtime.engine, runtime.caches, keys.digest_of(world["staff_a"].key))
    async with unit_of_work(runtime) as session:
        rich = await plugins.create_plugin(
            session,
            principal,
            PluginCreate.model_validate(
                {
                    "name": "rich",
                    "tags": ["red", "green"],
                    "annotations": [{"smarter.sh/author": "Jane"}, {"n": 1}],
                    "selector": {"directive": "search_terms", "searchTerms": ["weather", "sun"]},
                    "prompt": {"temperature": 0.25, "maxTokens": 100, "systemRole": "Be brief. ✓"},
                    "data": {
                        "description": "d",
                        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                        "staticData": {"nested": {"list": [1, 2.5, None, True]}},
                    },
                }
            ),
        )
        bare = await plugins.create_plugin(session, principal, PluginCreate(name="bare"))
        sql = await plugins.create_plugin(
            session, principal, PluginCreate.model_validate({"name": "q", "pluginClass": "sql"})
        )
        await session.execute(delete(PluginPrompt).where(PluginPrompt.plugin_id == bare.id))
    return [rich.id, bare.id, sql.id]


async def test_every_read_returns_what_sqlalchemy_returns(runtime: Runtime, world: World) -> None:
    ids = await varied_plugins(runtime, world)
    for plugin_id in [*ids, 10**9]:
        await assert_same_rows(runtime, plugins._VIEW_READ, {"plugin_id": plugin_id})
    dialect = runtime.engine.dialect.name
    assert await assert_same_rows(runtime, plugins._views_read(dialect), {"plugin_ids": ids}) == 3

    for actor in world.actors.values():
        digest = keys.digest_of(actor.key)
        assert await assert_same_rows(runtime, principals._PRINCIPAL_READ, {"digest": digest}) >= 1
    assert await assert_same_rows(runtime, principals._PRINCIPAL_READ, {"digest": "0" * 128}) == 0

    account_id = world.account_a.id
    page = {"scope_ids": [account_id], "limit": 10, "offset": 0}
    cases: list[tuple[dict[str, bool], dict[str, Any]]] = [
        ({}, {}),
        ({"name": True}, {"name": "rich"}),
        ({"tag": True}, {"tag": "red"}),
        ({"plugin_class": True}, {"plugin_class": "sql"}),
        ({"account_number": True}, {"account_number": world.account_a.account_number}),
    ]
    for flags, values in cases:
        filters = {"name": False, "tag": False, "plugin_class": False, "account_number": False, **flags}
        read = plugins._page_read(dialect, "account_id", **filters)
        assert await assert_same_rows(runtime, read, {**page, **values}) >= 1
    unscoped = plugins._page_read(dialect, None, name=False, tag=False, plugin_class=False, account_number=False)
    assert await assert_same_rows(runtime, unscoped, {"limit": 2, "offset": 1}) == 2


def test_statement_constants_travel_with_the_sql() -> None:
    compiled = principals._PRINCIPAL_READ.compiled(asyncpg_dialect())
    assert "$2" in compiled.sql
    expected = [PLATFORM_ACCOUNT_NUMBER, KIND_API_KEY, "d"]
    assert sorted(map(str, compiled.arguments({"digest": "d"}))) == sorted(expected)


def test_a_parameter_expanded_at_execution_is_refused() -> None:
    expanding = Read(select(User.id).where(User.id.in_(bindparam("ids", expanding=True))))
    with pytest.raises(ValueError, match="array"):
        expanding.compiled(asyncpg_dialect())


async def terminate_other_backends(runtime: Runtime) -> None:
    async with runtime.engine.connect() as conn:
        await conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = 'smarter-core' AND pid <> pg_backend_pid()"
            )
        )


@pytest.mark.postgres_only
async def test_a_refused_value_is_a_422_and_keeps_the_connection(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    headers = world["staff_a"].headers
    for _ in range(3):
        response = await client.get("/api/v1/plugins/", params={"tag": "bad\x00tag"}, headers=headers)
        assert response.status_code == 422, response.text
    assert (await client.get("/api/v1/plugins/", headers=headers)).status_code == 200


@pytest.mark.postgres_only
async def test_connections_lost_under_a_read_are_replaced(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    """The server drops every pooled connection (a restart, a failover): at most a 503 or two, then 200s."""
    headers = world["staff_a"].headers
    await asyncio.gather(*(client.get("/api/v1/plugins/", headers=headers) for _ in range(8)))  # a busy pool
    await terminate_other_backends(runtime)
    statuses = [(await client.get("/api/v1/plugins/", headers=headers)).status_code for _ in range(6)]
    assert set(statuses) <= {200, 503}
    assert statuses.count(503) <= 2, statuses
    assert statuses[-4:] == [200] * 4, statuses


@pytest.mark.parametrize(
    ("error", "unavailable", "refused"),
    [
        (asyncpg.InterfaceError("connection is closed"), True, False),
        (asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"), True, False),
        (asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"), True, False),
        (asyncpg.AdminShutdownError("terminating connection due to administrator command"), True, False),
        (asyncpg.exceptions._base.DataError("invalid input for query argument $1"), False, True),
        (asyncpg.CharacterNotInRepertoireError("invalid byte sequence for encoding"), False, True),
        (asyncpg.UndefinedTableError("relation does not exist"), False, False),
    ],
)
def test_driver_errors_are_classified_as_the_app_answers_them(
    error: Exception, unavailable: bool, refused: bool
) -> None:
    """asyncpg's own errors (a `Read` raises them unwrapped): 503 when the connection is gone, 422 for a value."""
    assert errors.is_database_unavailable(error) is unavailable
    assert errors.is_refused_value(error) is refused
    assert errors.is_connection_lost(error) is (unavailable and not isinstance(error, asyncpg.InterfaceError))


# --- the read lane (PostgreSQL: other drivers read through their pool) ---------------------------------


def principal_read_via(lane: reads.ReadLane, runtime: Runtime, digest: str = "0" * 128) -> Awaitable[Sequence[Any]]:
    compiled = principals._PRINCIPAL_READ.compiled(runtime.engine.dialect)
    arguments = compiled.arguments({"digest": digest})
    return lane.fetch(runtime.autocommit.sync_engine, compiled.sql, arguments)


@contextmanager
def pool_checkouts(runtime: Runtime) -> Iterator[list[object]]:
    """The connections checked out of the engine's pool while the block runs."""
    pool = runtime.engine.sync_engine.pool
    seen: list[object] = []

    def checked_out(dbapi_connection: object, _record: object, _proxy: object) -> None:
        seen.append(dbapi_connection)

    event.listen(pool, "checkout", checked_out)
    try:
        yield seen
    finally:
        event.remove(pool, "checkout", checked_out)


@pytest.mark.postgres_only
async def test_the_app_reads_through_its_lane_without_pool_checkouts(runtime: Runtime, world: World) -> None:
    lane = reads.lane_of(runtime.engine)
    assert lane is not None
    assert lane.size == runtime.settings.db_pool_size // 2
    digest = keys.digest_of(world["staff_a"].key)
    await principals._PRINCIPAL_READ.rows(runtime.autocommit, {"digest": digest})  # the lane holds one now
    with pool_checkouts(runtime) as checkouts:
        for _ in range(20):
            assert len(await principals._PRINCIPAL_READ.rows(runtime.autocommit, {"digest": digest})) >= 1
    assert checkouts == []
    assert 1 <= lane.held <= lane.size


@pytest.mark.postgres_only
async def test_a_busy_lane_sends_reads_to_the_pool_and_keeps_its_size(runtime: Runtime, world: World) -> None:
    lane = reads.ReadLane(size=2, ping_after=60.0)
    digest = keys.digest_of(world["staff_a"].key)
    expected = len(await principals._PRINCIPAL_READ.rows(runtime.autocommit, {"digest": digest}))
    with pool_checkouts(runtime) as checkouts:
        results = await asyncio.gather(*(principal_read_via(lane, runtime, digest) for _ in range(12)))
    assert [len(rows) for rows in results] == [expected] * 12
    assert lane.held == 2
    assert len(checkouts) > 2  # the reads beyond the lane's two took pooled connections
    pool = runtime.engine.sync_engine.pool
    before = pool.checkedout()
    await lane.close()
    assert (lane.held, pool.checkedout()) == (0, before - 2)
    assert len(await principal_read_via(lane, runtime, digest)) == expected  # a closed lane: the pool's path
    assert lane.held == 0


@pytest.mark.postgres_only
async def test_a_lane_connection_killed_while_idle_costs_no_read(runtime: Runtime, world: World) -> None:
    """Idle past the ping window, a dead connection is found by its ping; the read runs on a fresh one."""
    lane = reads.ReadLane(size=2, ping_after=0.0)
    digest = keys.digest_of(world["staff_a"].key)
    await asyncio.gather(*(principal_read_via(lane, runtime, digest) for _ in range(2)))
    assert lane.held == 2
    await terminate_other_backends(runtime)
    assert len(await principal_read_via(lane, runtime, digest)) >= 1
    assert len(await principal_read_via(lane, runtime, digest)) >= 1
    assert 1 <= lane.held <= 2
    await lane.close()


@pytest.mark.postgres_only
async def test_a_lane_connection_lost_mid_read_is_a_503_then_replaced(runtime: Runtime, world: World) -> None:
    lane = reads.ReadLane(size=2, ping_after=60.0)
    digest = keys.digest_of(world["staff_a"].key)
    await asyncio.gather(*(principal_read_via(lane, runtime, digest) for _ in range(2)))
    pool = runtime.engine.sync_engine.pool
    checked_out = pool.checkedout()
    await terminate_other_backends(runtime)
    await asyncio.sleep(0.05)  # the terminations reach the idle connections
    with pytest.raises(Exception) as lost:  # noqa: PT011 - whichever error asyncpg raises for the loss
        await principal_read_via(lane, runtime, digest)
    assert errors.is_database_unavailable(lost.value)
    assert lane.held == 0  # the lost connection and every idle one with it, all back in the pool's count
    assert pool.checkedout() == checked_out - 2
    assert len(await principal_read_via(lane, runtime, digest)) >= 1
    assert lane.held == 1
    await lane.close()


@pytest.mark.postgres_only
async def test_a_pool_invalidation_reaches_the_lane(runtime: Runtime, world: World) -> None:
    """A disconnect seen elsewhere (here: another lane's ping) replaces the pool's connections and the lane's."""
    lane = reads.ReadLane(size=2, ping_after=60.0)
    prober = reads.ReadLane(size=1, ping_after=0.0)
    digest = keys.digest_of(world["staff_a"].key)
    await asyncio.gather(*(principal_read_via(lane, runtime, digest) for _ in range(2)))
    await principal_read_via(prober, runtime, digest)
    await terminate_other_backends(runtime)
    await asyncio.sleep(0.05)
    assert len(await principal_read_via(prober, runtime, digest)) >= 1  # its ping fails: the pool is invalidated
    for _ in range(3):
        assert len(await principal_read_via(lane, runtime, digest)) >= 1  # fresh connections, no failed read
    await lane.close()
    await prober.close()
