"""The SQL tool-call scenario's world: a database of its own on the bench's PostgreSQL server with a
1,000-row table, a SqlConnection to it (no password: the local server trusts), and a SQL plugin of the first
tenant whose call returns 10 of those rows.

The connection targets 127.0.0.1, so the service runs with `SMARTER_CORE_PLUGIN_NETWORKS=any`.
"""

from __future__ import annotations

import asyncpg
from sqlalchemy import select
from sqlalchemy.engine import make_url

from app import db
from app.caching.registry import CacheRegistry
from app.config import Settings
from app.models import PluginDataSql, PluginMeta, PluginPrompt, PluginSelector, SqlConnection, User, UserProfile

ROWS = 1000
QUERY = "SELECT id, name, price, created FROM items WHERE id >= {low} ORDER BY id LIMIT 10"
ARGUMENTS = {"low": 500}


def data_database(url: str) -> str:
    return f"{make_url(url).database}_data"


def _admin_dsn(url: str, database: str) -> str:
    return make_url(url).set(drivername="postgresql", database=database).render_as_string(hide_password=False)


async def seed(url: str) -> int:
    """The data database, the connection and the plugin; the plugin's id."""
    name = data_database(url)
    admin = await asyncpg.connect(_admin_dsn(url, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    data = await asyncpg.connect(_admin_dsn(url, name))
    try:
        await data.execute(
            "CREATE TABLE items (id integer PRIMARY KEY, name text, price numeric(10, 2), created timestamptz)"
        )
        await data.execute(
            "INSERT INTO items SELECT i, 'item ' || i, i * 1.25, timestamptz '2026-01-01 00:00+00' + i * interval '1 h'"
            " FROM generate_series(1, $1::integer) i",
            ROWS,
        )
        await data.execute("ANALYZE items")
    finally:
        await data.close()

    parsed = make_url(url)
    engine = db.create_engine(Settings(database_url=url, cache_ttl=0, log_level="warning"))
    sessionmaker = db.create_sessionmaker(engine, CacheRegistry(ttl=0, maxsize=1))
    try:
        async with sessionmaker() as session:
            profile = (
                await session.execute(
                    select(UserProfile)
                    .join(User, User.id == UserProfile.user_id)
                    .where(User.username == "bench_staff_000")
                )
            ).scalar_one()
            owner = {"user_profile_id": profile.id, "account_id": profile.account_id}
            connection = SqlConnection(
                name="bench_items",
                db_engine="postgresql",
                hostname=parsed.host or "127.0.0.1",
                port=parsed.port or 5432,
                database=name,
                username=parsed.username or "postgres",
                timeout=5,
                **owner,
            )
            plugin = PluginMeta(name="bench_sql_items", plugin_class="sql", **owner)
            session.add_all([connection, plugin])
            await session.flush()
            session.add_all(
                [
                    PluginPrompt(plugin_id=plugin.id),
                    PluginSelector(plugin_id=plugin.id, directive="llm", search_terms=[]),
                    PluginDataSql(
                        plugin_id=plugin.id,
                        connection_id=connection.id,
                        description="Ten items from a given id on.",
                        sql_query=QUERY,
                        parameters=[{"name": "low", "type": "integer", "required": True}],
                        limit=10,
                    ),
                ]
            )
            await db.commit(session)
            return plugin.id
    finally:
        await engine.dispose()


async def drop(url: str) -> None:
    admin = await asyncpg.connect(_admin_dsn(url, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{data_database(url)}" WITH (FORCE)')
    finally:
        await admin.close()
