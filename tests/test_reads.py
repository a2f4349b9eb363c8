"""`app.reads`: a driver read returns exactly what SQLAlchemy returns, and fails as the app expects.

On PostgreSQL the runtime's reader runs a `Read`'s SQL with asyncpg on connections of its own; these tests
run every `Read` of the app both ways on the same rows (parts missing, JSON, floats, timestamps, tags,
NULLs) and compare, then take the server away under the reader (killed idle connections, killed busy
ones, a cancelled statement) and check what a request sees and what is left open. On SQLite a `Read` is
SQLAlchemy's execution, so the comparison holds trivially there and the failure tests are PostgreSQL-only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import JSON, Integer, bindparam, delete, event, func, literal_column, select, text
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.exc import DBAPIError

from app import db, db_errors, reads
from app.identifiers import PLATFORM_ACCOUNT_NUMBER
from app.models import KIND_API_KEY, PluginPrompt, User
from app.reads import Read
from app.runtime import Runtime
from app.schemas.plugins import PluginCreate
from app.services import keys, plugins, principals
from app.services.plugins import statements as plugin_statements
from tests.support import World, statements, unit_of_work


async def via_sqlalchemy(runtime: Runtime, read: Read, values: dict[str, Any]) -> list[tuple[Any, ...]]:
    async with runtime.autocommit.connect() as connection:
        return [tuple(row) for row in (await connection.execute(read.statement, values)).all()]


async def assert_same_rows(runtime: Runtime, read: Read, values: dict[str, Any]) -> int:
    driver = [tuple(row) for row in await read.rows(runtime.reader, values)]
    assert driver == await via_sqlalchemy(runtime, read, values)
    return len(driver)


async def varied_plugins(runtime: Runtime, world: World) -> list[int]:
    """Plugins whose rows exercise every column type: tags, JSON, a missing part, a non-static class."""
    principal = await principals.authenticate(runtime.reader, runtime.caches, keys.digest_of(world["staff_a"].key))
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
        await assert_same_rows(runtime, plugin_statements.VIEW_READ, {"plugin_id": plugin_id})
    dialect = runtime.engine.dialect.name
    assert await assert_same_rows(runtime, plugin_statements.views_read(dialect), {"plugin_ids": ids}) == 3
    assert await assert_same_rows(runtime, plugin_statements.rows_read(dialect), {"plugin_ids": ids}) == 3

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
        read = plugin_statements.page_read(dialect, "account_id", **filters)
        assert await assert_same_rows(runtime, read, {**page, **values}) >= 1
    unscoped = plugin_statements.page_read(
        dialect, None, name=False, tag=False, plugin_class=False, account_number=False
    )
    assert await assert_same_rows(runtime, unscoped, {"limit": 2, "offset": 1}) == 2


def test_statement_constants_travel_with_the_sql() -> None:
    sql, arguments = principals._PRINCIPAL_READ.render(asyncpg_dialect(), {"digest": "d"})
    assert "$2" in sql
    assert sorted(map(str, arguments)) == sorted([PLATFORM_ACCOUNT_NUMBER, KIND_API_KEY, "d"])
    again = principals._PRINCIPAL_READ.render(asyncpg_dialect(), {"digest": "e"})
    assert again[0] == sql
    assert sorted(map(str, again[1])) == sorted([PLATFORM_ACCOUNT_NUMBER, KIND_API_KEY, "e"])


async def test_a_parameter_expanded_at_execution_is_rendered_per_call(runtime: Runtime, world: World) -> None:
    """An expanding IN has no fixed SQL: each call renders its own, with as many placeholders as values."""
    expanding = Read(select(User.username).where(User.id.in_(bindparam("ids", expanding=True))).order_by(User.id))
    staff, regular = world["staff_a"].user, world["regular_b"].user
    assert [row[0] for row in await expanding.rows(runtime.reader, {"ids": [staff.id]})] == ["staff_a"]
    both = await expanding.rows(runtime.reader, {"ids": [regular.id, staff.id, 10**9]})
    assert sorted(row[0] for row in both) == ["regular_b", "staff_a"]
    assert await expanding.rows(runtime.reader, {"ids": []}) == []


async def test_a_json_parameter_is_sent_as_sqlalchemy_sends_it(runtime: Runtime) -> None:
    """Every parameter goes through its type's bind processor (a JSON value serialised), not only expanded ones."""
    document = {"nested": {"list": [1, 2.5, None, True]}, "text": "✓"}
    echo = Read(select(bindparam("document", type_=JSON).label("document"), bindparam("n", type_=Integer)))
    assert await assert_same_rows(runtime, echo, {"document": document, "n": 3}) == 1
    assert [tuple(row) for row in await echo.rows(runtime.reader, {"document": document, "n": 3})] == [(document, 3)]
    # Beside an expanding IN, whose SQL is rendered from the values on every call.
    values = select(literal_column("1").label("n")).union_all(select(literal_column("2"))).subquery()
    echo_in = Read(
        select(bindparam("document", type_=JSON).label("document"), values.c.n).where(
            values.c.n.in_(bindparam("ns", expanding=True))
        )
    )
    rows = await echo_in.rows(runtime.reader, {"document": document, "ns": [2, 3]})
    assert [tuple(row) for row in rows] == [(document, 2)]
    assert await assert_same_rows(runtime, echo_in, {"document": document, "ns": [2, 3]}) == 1


@pytest.mark.postgres_only
async def test_a_create_is_one_statement_on_the_reader(
    runtime: Runtime, world: World, client: httpx.AsyncClient
) -> None:
    """A REST create on PostgreSQL runs its one statement on the reader, never the sessions' pool; a taken name is
    the 409 it always was, and the reader keeps its connection."""
    headers = world["staff_a"].headers
    body = {"name": "alone", "tags": ["x"], "data": {"description": "d", "staticData": {"k": 1}}}
    on_engine: list[str] = []

    def executed(_conn: object, _cursor: object, sql: str, *_: object) -> None:
        on_engine.append(sql)

    event.listen(runtime.engine.sync_engine, "before_cursor_execute", executed)
    try:
        with statements(runtime) as sent:
            created = await client.post("/api/v1/plugins/", json=body, headers=headers)
            taken = await client.post("/api/v1/plugins/", json=body, headers=headers)
    finally:
        event.remove(runtime.engine.sync_engine, "before_cursor_execute", executed)
    assert created.status_code == 201, created.text
    assert created.json()["tags"] == ["x"]
    assert taken.status_code == 409, taken.text
    assert taken.json()["errors"][0]["loc"] == ["body", "name"]
    assert len([sql for sql in sent if sql.startswith("WITH new_plugin")]) == 2
    assert not [sql for sql in on_engine if "plugin" in sql]  # (a key's lastUsedAt stamp may use the pool)
    reader = runtime.reader
    assert isinstance(reader, reads.DriverReader)
    assert reader.idle == reader.connections  # the 409's connection given back
    detail = await client.get(f"/api/v1/plugins/{created.json()['id']}/", headers=headers)
    assert detail.json() == created.json()


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
    assert db_errors.is_database_unavailable(error) is unavailable
    assert db_errors.is_refused_value(error) is refused
    assert db_errors.is_connection_lost(error) is (unavailable and not isinstance(error, asyncpg.InterfaceError))


# --- the reader's own connections (PostgreSQL: other databases read through SQLAlchemy) ---------------

BACKEND = Read(select(func.pg_backend_pid()))


def sleeping(seconds: float) -> Read:
    return Read(select(func.pg_backend_pid()).where(func.pg_sleep(seconds).is_not(None)))


def own_reader(runtime: Runtime, *, size: int = 2, **settings: float) -> reads.DriverReader:
    """A reader of `size` connections, the runtime's settings overridden by `settings` (`db_ping_after_idle`...)."""
    return reads.DriverReader(runtime.autocommit, runtime.settings.model_copy(update=settings), size=size)


async def backends_of(reader: reads.Reader, reads_at_once: int, read: Read = BACKEND) -> set[int]:
    """The server processes that served `reads_at_once` concurrent reads."""
    results = await asyncio.gather(*(read.rows(reader, {}) for _ in range(reads_at_once)))
    return {rows[0][0] for rows in results}


async def live_backends(runtime: Runtime) -> set[int]:
    for attempt in (1, 2):
        try:
            async with runtime.engine.connect() as conn:
                query = text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
                return {row[0] for row in await conn.execute(query)}
        except DBAPIError as error:
            # An earlier test of this module ended server sessions less than `db_ping_after_idle` ago: the
            # pooled connection was dead, and SQLAlchemy has replaced the pool's connections since.
            if attempt == 2 or not error.connection_invalidated:
                raise
    raise AssertionError("unreachable")


async def gone(runtime: Runtime, pids: set[int]) -> bool:
    """Whether none of `pids` is connected any more (a closed connection's backend exits a moment later; on a
    loaded machine, seconds later)."""
    for _ in range(200):
        if not pids & await live_backends(runtime):
            return True
        await asyncio.sleep(0.05)
    return False


@contextmanager
def pool_checkouts(runtime: Runtime) -> Iterator[list[object]]:
    """The connections checked out of SQLAlchemy's pool while the block runs."""
    pool = runtime.engine.sync_engine.pool
    seen: list[object] = []

    def checked_out(dbapi_connection: object, _record: object, _proxy: object) -> None:
        seen.append(dbapi_connection)

    event.listen(pool, "checkout", checked_out)
    try:
        yield seen
    finally:
        event.remove(pool, "checkout", checked_out)


async def test_the_runtime_hook_sees_every_read(runtime: Runtime, world: World) -> None:
    """A request's statements can be counted on both databases: the reader's included."""
    with statements(runtime) as seen:  # `observe_statements`, transaction control left out
        await principals._PRINCIPAL_READ.rows(runtime.reader, {"digest": keys.digest_of(world["staff_a"].key)})
    assert len(seen) == 1
    assert "api_key" in seen[0]


@pytest.mark.postgres_only
async def test_the_app_reads_on_its_share_of_the_pool_size(runtime: Runtime, world: World) -> None:
    """The reads never touch SQLAlchemy's pool; the two together hold no more than the configured size and
    overflow (the sessions' pool keeps its overflow connections: none is opened and closed per checkout)."""
    settings = runtime.settings
    reader = runtime.reader
    assert isinstance(reader, reads.DriverReader)
    pool = runtime.engine.sync_engine.pool
    assert reader.size + pool.size() == settings.db_pool_size + settings.db_max_overflow  # type: ignore[attr-defined]
    assert pool.overflow() <= 0  # type: ignore[attr-defined]
    digest = keys.digest_of(world["staff_a"].key)
    with pool_checkouts(runtime) as checkouts:
        for _ in range(5):
            assert len(await principals._PRINCIPAL_READ.rows(reader, {"digest": digest})) >= 1
        served_by = await backends_of(reader, 3 * reader.size, sleeping(0.02))
    assert checkouts == []
    assert len(served_by) <= reader.size
    assert 1 <= reader.connections <= reader.size
    assert reader.idle == reader.connections  # every one given back


@pytest.mark.postgres_only
async def test_a_busy_reader_waits_its_turn_and_no_longer_than_its_timeout(runtime: Runtime) -> None:
    reader = own_reader(runtime, size=2, db_pool_timeout=0.3)
    assert len(await backends_of(reader, 12, sleeping(0.02))) <= 2  # twelve reads, two connections
    assert (reader.connections, reader.idle) == (2, 2)
    slow = [asyncio.ensure_future(sleeping(1.0).rows(reader, {})) for _ in range(2)]
    await asyncio.sleep(0.1)
    with pytest.raises(TimeoutError) as waited:
        await BACKEND.rows(reader, {})
    assert db_errors.is_database_unavailable(waited.value)  # a 503, as SQLAlchemy's pool timeout
    await asyncio.gather(*slow)
    assert (reader.connections, reader.idle) == (2, 2)
    await reader.close()


@pytest.mark.postgres_only
async def test_connections_killed_while_idle_cost_no_read(runtime: Runtime) -> None:
    """Idle past the ping window, a dead connection is found by its ping; the read runs on a fresh one."""
    reader = own_reader(runtime, db_ping_after_idle=0.0)
    before = await backends_of(reader, 2, sleeping(0.05))
    await terminate_other_backends(runtime)
    assert await gone(runtime, before)
    for _ in range(3):
        assert not await backends_of(reader, 1) & before
    assert 1 <= reader.connections <= 2
    await reader.close()


@pytest.mark.postgres_only
async def test_a_connection_lost_mid_read_is_a_503_and_all_are_replaced(runtime: Runtime) -> None:
    """Within the ping window a killed connection fails its read; the reader then replaces every connection."""
    reader = own_reader(runtime, db_ping_after_idle=60.0)
    before = await backends_of(reader, 2, sleeping(0.05))
    await terminate_other_backends(runtime)
    assert await gone(runtime, before)
    with pytest.raises(Exception) as lost:  # noqa: PT011 - whichever error asyncpg raises for the loss
        await BACKEND.rows(reader, {})
    assert db_errors.is_database_unavailable(lost.value)
    assert reader.connections == 0  # the lost connection closed, and its idle sibling with it
    after = await backends_of(reader, 2, sleeping(0.05))
    assert after
    assert not after & before
    assert reader.connections <= 2
    await reader.close()


@pytest.mark.postgres_only
async def test_a_cancelled_or_timed_out_read_leaves_nothing_open(runtime: Runtime) -> None:
    """A statement abandoned midway leaves its connection in an unknown state: it is closed, not reused."""
    reader = own_reader(runtime, db_command_timeout=0.3)
    pending = asyncio.ensure_future(sleeping(5.0).rows(reader, {}))
    await asyncio.sleep(0.2)
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending
    assert reader.connections == 0
    with pytest.raises(TimeoutError) as timed_out:  # the command timeout
        await sleeping(5.0).rows(reader, {})
    assert db_errors.is_database_unavailable(timed_out.value)
    assert reader.connections == 0
    used = await backends_of(reader, 1)
    assert (reader.connections, reader.idle) == (1, 1)
    await reader.close()
    assert reader.connections == 0
    assert await gone(runtime, used)


@pytest.mark.postgres_only
async def test_a_closed_reader_closes_its_connections_and_refuses_reads(runtime: Runtime) -> None:
    reader = own_reader(runtime)
    used = await backends_of(reader, 2, sleeping(0.05))
    late = asyncio.ensure_future(sleeping(0.3).rows(reader, {}))  # lent while the reader closes
    await asyncio.sleep(0.1)
    await reader.close()
    assert len(await late) == 1
    assert reader.connections == 0
    assert await gone(runtime, used)
    with pytest.raises(asyncpg.InterfaceError) as refused:
        await BACKEND.rows(reader, {})
    assert db_errors.is_database_unavailable(refused.value)


@pytest.mark.postgres_only
async def test_the_sessions_pool_pings_its_idle_connections(runtime: Runtime) -> None:
    """SQLAlchemy's pool (sessions, writes) finds a connection killed while idle before using it."""
    engine = db.create_engine(runtime.settings.model_copy(update={"db_ping_after_idle": 0.0}))
    try:
        async with engine.connect() as conn:
            pid = (await conn.execute(select(func.pg_backend_pid()))).scalar_one()
        await terminate_other_backends(runtime)
        assert await gone(runtime, {pid})
        async with engine.connect() as conn:
            assert (await conn.execute(select(func.pg_backend_pid()))).scalar_one() != pid
    finally:
        await engine.dispose()
