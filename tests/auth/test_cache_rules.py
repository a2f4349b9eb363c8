"""Every write of a cached table invalidates, whoever writes it: the unit of work derives the invalidations
from the rows it wrote (`app.caching.rules`), by the ORM or by a DML statement.

Each test writes rows of every table in `RULES` through a real session on the real database and reads
what the session queued for its commit; the revocation and cross-process tests show the queued
invalidations reaching the caches.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.caching.registry import PENDING_KEY, Invalidation
from app.caching.rules import (
    ACCOUNT_CACHE,
    API_CONNECTION_CACHE,
    PLUGIN_CACHES,
    PRINCIPAL_CACHE,
    REVEALED_CACHE,
    RULES,
    SQL_CONNECTION_CACHE,
)
from app.main import create_app
from app.models import Base
from app.runtime import Runtime
from app.services.plugins import plugin_cache
from tests import support
from tests.plugin_kinds import api_data, sql_data
from tests.support import World

PLUGINS = "/api/v1/plugins/"

# For each mapped table of the rules: an attribute an ORM update may change, and its new value.
ORM_CHANGES: dict[str, tuple[str, Any]] = {
    "account": ("company_name", "Changed Inc."),
    "app_user": ("email", "changed@example.com"),
    "user_profile": ("is_test", True),
    "api_key": ("is_active", False),
    "plugin_meta": ("description", "changed"),
    "plugin_prompt": ("model", "changed-model"),
    "plugin_selector": ("search_terms", ["changed"]),
    "plugin_data_static": ("description", "changed"),
    "plugin_data_sql": ("sql_query", "SELECT 2"),
    "plugin_data_api": ("endpoint", "/changed"),
    "connection_sql": ("timeout", 7),
    "connection_api": ("timeout", 7),
    "secret": ("encrypted_value", "changed"),
}

HOST = {"hostname": "db.example.com"}
# The caches whose entries are rows of a table, keyed by the row's id.
BY_ID = {"connection_sql": SQL_CONNECTION_CACHE, "connection_api": API_CONNECTION_CACHE, "secret": REVEALED_CACHE}


def mapped_class(table: str) -> Any | None:
    return next((m.class_ for m in Base.registry.mappers if m.local_table.name == table), None)


def queued(session: AsyncSession) -> list[Invalidation]:
    return list(session.info.get(PENDING_KEY, []))


def expected(table: str, row: Any) -> set[Invalidation]:
    """What each rule must ask for, written out: the caches' keys and tags (`cache_rules` docs)."""
    if table == "account":
        return {
            Invalidation(cache=ACCOUNT_CACHE, key=("id", row.id)),
            Invalidation(cache=ACCOUNT_CACHE, key=("number", row.account_number)),
        }
    if table == "app_user":
        return {Invalidation(tag=("user", row.id))}
    if table == "user_profile":
        return {Invalidation(tag=("user", row.user_id))}
    if table == "api_key":
        return {Invalidation(cache=PRINCIPAL_CACHE, key=row.digest)}
    if table == "plugin_meta":
        return {Invalidation(cache=cache, key=row.id) for cache in PLUGIN_CACHES}  # its snapshot and list row
    if table == "plugin_meta_tag":
        return {Invalidation(cache=cache, key=row.object_id) for cache in PLUGIN_CACHES}
    if table in BY_ID:
        return {Invalidation(cache=BY_ID[table], key=row.id)}
    return {Invalidation(cache=cache, key=row.plugin_id) for cache in PLUGIN_CACHES}  # the plugin's parts


@pytest.fixture
async def plugin_rows(client: httpx.AsyncClient, world: World) -> None:
    """A static plugin with every part and a tag, and an SQL and an API plugin with their data, so every
    plugin table has a row."""
    headers = world["staff_a"].headers
    # First (the rows the DML test deletes): a secret and connections nothing uses, so a delete may run.
    unused = [
        ("/api/v1/secrets/", {"name": "rules_secret", "value": "probe-value"}),
        ("/api/v1/connections/sql/", {"name": "rules_sql_unused", "dbEngine": "postgresql", "database": "x"} | HOST),
        ("/api/v1/connections/api/", {"name": "rules_api_unused", "baseUrl": "https://unused.example.com/"}),
    ]
    for path, unused_body in unused:
        made = await client.post(path, json=unused_body, headers=headers)
        assert made.status_code == 201, made.text
    body = {"name": "rules_probe", "tags": ["probe"], "data": {"description": "d", "staticData": {"a": 1}}}
    created = await client.post(PLUGINS, json=body, headers=headers)
    assert created.status_code == 201, created.text
    connections = {
        "sql": {"name": "rules_sql", "dbEngine": "postgresql", "hostname": "db.example.com", "database": "x"},
        "api": {"name": "rules_api", "baseUrl": "https://api.example.com/"},
    }
    for kind, connection in connections.items():
        made = await client.post(f"/api/v1/connections/{kind}/", json=connection, headers=headers)
        assert made.status_code == 201, made.text
    plugins = [
        {"pluginClass": "sql", "connection": "rules_sql", "sqlData": sql_data()},
        {"pluginClass": "api", "connection": "rules_api", "apiData": api_data()},
    ]
    for plugin in plugins:
        made = await client.post(PLUGINS, json={"name": f"rules_{plugin['pluginClass']}", **plugin}, headers=headers)
        assert made.status_code == 201, made.text


def test_every_cached_table_has_an_orm_change_or_is_a_link_table() -> None:
    for table in RULES:
        assert table in ORM_CHANGES or mapped_class(table) is None, f"no ORM write tested for {table}"


@pytest.mark.usefixtures("plugin_rows")
async def test_a_dml_statement_on_any_cached_table_queues_its_invalidations(runtime: Runtime) -> None:
    for table_name, rule in RULES.items():
        table = Base.metadata.tables[table_name]
        async with runtime.writer_sessionmaker() as session:
            first = (await session.execute(select(table).limit(1))).first()
            assert first is not None, f"no {table_name} row to write"
            key = [column == first._mapping[column.name] for column in table.primary_key.columns]
            returned = [table.c[name] for name in rule.keys]
            written = (await session.execute(delete(table).where(*key).returning(*returned))).all()
            assert len(written) == 1  # the caller still reads what it returned
            assert set(queued(session)) >= expected(table_name, first), table_name
            await session.rollback()


@pytest.mark.usefixtures("plugin_rows")
async def test_an_orm_write_of_any_cached_model_queues_its_invalidations(runtime: Runtime) -> None:
    for table_name, (attribute, value) in ORM_CHANGES.items():
        model = mapped_class(table_name)
        assert model is not None
        async with runtime.writer_sessionmaker() as session:
            row = (await session.execute(select(model).limit(1))).scalars().first()
            assert row is not None, f"no {table_name} row to write"
            setattr(row, attribute, value)
            await session.flush()
            assert set(queued(session)) >= expected(table_name, row), table_name
            await session.rollback()


async def test_a_change_of_an_ignored_attribute_alone_queues_nothing(runtime: Runtime, world: World) -> None:
    """A login's timestamp is shown by no cache: a login does not reload the user's principals."""
    async with runtime.writer_sessionmaker() as session:
        user = await session.get(mapped_class("app_user"), world["staff_a"].user.id)
        assert user is not None
        user.last_login = user.date_joined
        await session.flush()
        assert queued(session) == []
        await session.rollback()


async def test_a_statement_without_its_keys_drops_the_caches_whole(runtime: Runtime, world: World) -> None:
    api_key = mapped_class("api_key")
    async with runtime.writer_sessionmaker() as session:
        result = await session.execute(
            update(api_key).where(api_key.id == world["staff_a"].key_row.id).values(name="x")
        )
        assert result.rowcount == 1  # the statement ran as written
        assert queued(session) == [Invalidation(cache=PRINCIPAL_CACHE)]
        await session.rollback()


async def test_the_invalidations_reach_the_cache_after_commit(runtime: Runtime, world: World) -> None:
    """Committed through `app.db.commit`: the queued keys are dropped (the whole cache for a keyless write)."""
    from app import db
    from app.services import accounts

    account_id = world.account_b.id
    assert await accounts.cached_by_id(runtime.engine, runtime.caches, account_id) is not None
    cache = accounts.account_cache(runtime.caches)
    assert cache.peek(("id", account_id)) is not None
    async with runtime.writer_sessionmaker() as session:
        account = await session.get(mapped_class("account"), account_id)
        assert account is not None
        account.company_name = "Committed Inc."
        await db.commit(session)
    assert cache.peek(("id", account_id)) is None


@pytest.mark.postgres_only
async def test_a_create_announced_by_its_statement_reaches_another_process(
    client: httpx.AsyncClient, world: World, runtime: Runtime, database_url: str
) -> None:
    """A PostgreSQL create publishes its row's keys itself (one round trip, no NOTIFY of its own): another
    app instance derives the invalidation from them with the same rule and applies it; this one applied it
    as the statement returned."""
    other: FastAPI = create_app(support.test_settings(database_url))
    async with other.router.lifespan_context(other):
        b: Runtime = other.state.runtime
        assert b.listener is not None
        await asyncio.wait_for(b.listener.connected.wait(), 10)  # a guard against hanging
        here, there = plugin_cache(runtime.caches), plugin_cache(b.caches)
        before_here, before_there, received = here.generation, there.generation, b.listener.received
        created = await client.post(
            PLUGINS, json={"name": "announced", "tags": ["fresh_tag"]}, headers=world["staff_a"].headers
        )
        assert created.status_code == 201, created.text
        assert sorted(created.json()["tags"]) == ["fresh_tag"]  # a tag no row had: inserted by the statement
        assert here.generation > before_here
        deadline = time.monotonic() + 10  # a guard against hanging, not a timing assertion
        while b.listener.received == received:
            assert time.monotonic() < deadline, "the other instance heard nothing"
            await asyncio.sleep(0.01)
        assert there.generation > before_there
