"""The benchmark's world on a fresh PostgreSQL database.

Platform account (the real bootstrap), 100 tenant accounts each with one staff user, their profile and a
named API key, one regular user in the first tenant (a login token), and 10,000 static plugins (100 per
tenant) with their prompt, selector and static data. People and keys go through the services, so they are
exactly what the API would create; plugins are bulk Core inserts, which keeps seeding to a few seconds.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

from app import db
from app.caching.registry import CacheRegistry
from app.config import Settings
from app.models import PluginDataStatic, PluginMeta, PluginPrompt, PluginSelector
from app.services import accounts, api_keys, profiles, users
from app.services.bootstrap import bootstrap
from bench.runtime_seed import seed_runtime
from tests.support import create_postgres_database, drop_postgres_database, migrate

DEFAULT_SERVER_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/"
TENANTS = 100
PLUGINS_PER_TENANT = 100
INSERT_BATCH = 2_000
REGULAR_USERNAME = "bench_regular"
LOGIN_TOKEN_TTL = 6 * 3600

SYSTEM_ROLE = (
    "You are a helpful assistant for the benchmark tenant. Answer questions about the weather, "
    "the tenant's products and its opening hours; say when you do not know."
)
PARAMETERS = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "The city to report on."},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city"],
}


@dataclass
class World:
    """What the scenarios need from the seeded database (keys are throwaway, for this database only)."""

    url: str
    admin_key: str
    staff_keys: list[str] = field(default_factory=list)  # index = tenant
    regular_token: str = ""
    first_plugin_ids: list[int] = field(default_factory=list)  # per tenant
    plugins: int = 0
    seconds: float = 0.0
    sql_plugin_id: int = 0  # `bench.sql_call`
    runtime_key: str = ""  # the plugin runtime's account (`bench.runtime_seed`)
    first_tool_name: str = ""  # the first tenant's first plugin, as an MCP tool


def server_url() -> str:
    """The PostgreSQL server to create the bench database on (BENCH_DATABASE_URL, else the local one)."""
    return os.environ.get("BENCH_DATABASE_URL", DEFAULT_SERVER_URL)


async def create_database() -> str:
    base = make_url(server_url())
    name = f"smarter_core_bench_{secrets.token_hex(4)}"
    return await create_postgres_database(base.set(database=name).render_as_string(hide_password=False))


async def drop_database(url: str) -> None:
    await drop_postgres_database(url)


def migrate_database(url: str) -> None:
    """`alembic upgrade head` (it runs its own event loop: call it outside one)."""
    migrate(url)


async def postgres_facts(url: str) -> tuple[str, int | None]:
    """The server version, and the postmaster's pid when it runs on this machine (None otherwise)."""
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(plain)
    try:
        version = str(await conn.fetchval("SHOW server_version"))
        # Read while the backend lives: its parent is the postmaster.
        postmaster = _parent_pid(int(await conn.fetchval("SELECT pg_backend_pid()")))
    finally:
        await conn.close()
    return version, postmaster


def _parent_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("PPid:"):
                    return int(line.split()[1])
    except OSError:
        return None  # PostgreSQL on another host or in another PID namespace
    return None


async def seed(url: str) -> World:
    started = time.perf_counter()
    settings = Settings(database_url=url, cache_ttl=0, log_level="warning")
    engine = db.create_engine(settings)
    sessionmaker = db.create_sessionmaker(engine, CacheRegistry(ttl=0, maxsize=1))
    try:
        async with sessionmaker() as session:
            admin_key = await bootstrap(session)
            if admin_key is None:
                raise RuntimeError("The bench database is not empty.")
            world = World(url=url, admin_key=admin_key)
            tenant_profiles: list[tuple[int, int]] = []  # (profile id, account id)
            for index in range(TENANTS):
                account = await accounts.create_account(
                    session, name=f"bench_tenant_{index:03d}", company_name=f"Bench Tenant {index:03d} Inc."
                )
                staff = await users.create_user(
                    session,
                    username=f"bench_staff_{index:03d}",
                    email=f"staff{index:03d}@bench.example.com",
                    is_staff=True,
                )
                profile = await profiles.add_profile(session, staff, account)
                _, key = await api_keys.issue_key(session, user=staff, profile=profile, name="bench_key")
                world.staff_keys.append(key)
                tenant_profiles.append((profile.id, account.id))
                if index == 0:
                    regular = await users.create_user(
                        session, username=REGULAR_USERNAME, email="regular@bench.example.com"
                    )
                    await profiles.add_profile(session, regular, account)
                    _, world.regular_token = await api_keys.issue_login_token(session, regular, LOGIN_TOKEN_TTL)
            await db.commit(session)

            for start in range(0, len(tenant_profiles), max(1, INSERT_BATCH // PLUGINS_PER_TENANT)):
                chunk = tenant_profiles[start : start + max(1, INSERT_BATCH // PLUGINS_PER_TENANT)]
                ids = await _insert_plugins(session, chunk)
                world.first_plugin_ids.extend(ids[i * PLUGINS_PER_TENANT] for i in range(len(chunk)))
                world.plugins += len(ids)
            world.runtime_key = await seed_runtime(session)
            world.first_tool_name = f"bench_plugin_{tenant_profiles[0][1]:03d}_000"
            await db.commit(session)
            await session.execute(text("ANALYZE"))
            await db.commit(session)
    finally:
        await engine.dispose()
    world.seconds = time.perf_counter() - started
    return world


async def _insert_plugins(session: Any, owners: list[tuple[int, int]]) -> list[int]:
    """One INSERT ... RETURNING per table for the plugins of `owners` (in tenant order)."""
    meta_rows = [
        {
            "name": f"bench_plugin_{account_id:03d}_{n:03d}",
            "description": f"Benchmark plugin {n} of account {account_id}.",
            "version": "1.0.0",
            "annotations": [{"bench.smarter.sh/tenant": str(account_id)}],
            "plugin_class": "static",
            "user_profile_id": profile_id,
            "account_id": account_id,
        }
        for profile_id, account_id in owners
        for n in range(PLUGINS_PER_TENANT)
    ]
    result = await session.execute(insert(PluginMeta).returning(PluginMeta.id, sort_by_parameter_order=True), meta_rows)
    ids = [row[0] for row in result]
    await session.execute(
        insert(PluginPrompt),
        [
            {
                "plugin_id": plugin_id,
                "provider": "openai",
                "system_role": SYSTEM_ROLE,
                "model": "gpt-4o-mini",
                "temperature": 0.5,
                "max_completion_tokens": 2048,
            }
            for plugin_id in ids
        ],
    )
    await session.execute(
        insert(PluginSelector),
        [
            {"plugin_id": plugin_id, "directive": "search_terms", "search_terms": ["weather", f"term{plugin_id}"]}
            for plugin_id in ids
        ],
    )
    await session.execute(
        insert(PluginDataStatic),
        [
            {
                "plugin_id": plugin_id,
                "description": "Current weather by city.",
                "parameters": PARAMETERS,
                "static_data": {"city": "Lisbon", "temperature": 21, "conditions": "sunny", "id": plugin_id},
            }
            for plugin_id in ids
        ],
    )
    return ids
