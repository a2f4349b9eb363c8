"""Test support: database provisioning, the seeded world of principals, HTTP clients."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from alembic import command
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app import db
from app.config import Settings, normalise_database_url
from app.models import Account, ApiKey, Base, User, UserProfile
from app.runtime import Runtime
from app.services import accounts, api_keys, profiles, users
from app.services.bootstrap import bootstrap
from app.services.secrets.cipher import generate_key
from tests.secrets_scan import remember_basic_password, remember_secret_value

POSTGRES_ADMIN_DB = "postgres"
# The secrets' key of a test run on PostgreSQL (SQLite runs use the key file next to their database).
TEST_SECRETS_KEY = generate_key()
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK")


def backend() -> str:
    return "postgresql" if os.environ.get("TEST_DATABASE_URL") else "sqlite"


async def create_postgres_database(url: str) -> str:
    """A fresh database for this run: the named one recreated, or a random name when none is given."""
    parsed = make_url(normalise_database_url(url))
    name = parsed.database or f"smarter_core_test_{secrets.token_hex(4)}"
    admin = parsed.set(drivername="postgresql", database=POSTGRES_ADMIN_DB)
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return parsed.set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(url: str) -> None:
    parsed = make_url(url)
    admin = parsed.set(drivername="postgresql", database=POSTGRES_ADMIN_DB)
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
    finally:
        await conn.close()


async def fresh_database_url() -> str:
    """A new, empty database on the backend under test (SQLite file, or PostgreSQL database)."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        base = make_url(normalise_database_url(configured))
        return await create_postgres_database(base.set(database=None).render_as_string(hide_password=False))
    directory = Path(tempfile.mkdtemp(prefix="smarter-core-test-"))
    return f"sqlite+aiosqlite:///{directory / 'test.sqlite3'}"


def migrate(url: str, revision: str = "head") -> None:
    config = db.alembic_config(url)
    config.attributes["skip_logging_config"] = True
    command.upgrade(config, revision)


def downgrade(url: str, revision: str = "base") -> None:
    config = db.alembic_config(url)
    config.attributes["skip_logging_config"] = True
    command.downgrade(config, revision)


def secrets_env(url: str) -> dict[str, str]:
    """The environment a `serve` subprocess on `url` needs for secrets: a key on PostgreSQL (SQLite: none)."""
    return {} if url.startswith("sqlite") else {"SMARTER_CORE_SECRETS_KEYS": TEST_SECRETS_KEY}


def test_settings(url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": url,
        "cache_ttl": 60.0,
        "listen_probe_interval": 1.0,
        "db_pool_size": 10,
        "log_level": "warning",
    }
    if not url.startswith("sqlite"):  # PostgreSQL has no key file: the secrets' cipher needs a key
        values["secrets_keys"] = TEST_SECRETS_KEY
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def truncate_all(runtime: Runtime) -> None:
    try:
        await _delete_all(runtime)
    except DBAPIError as error:
        # A test that ended server sessions (tests/test_reads.py, tests/outage) may leave a pooled connection
        # that died less than `db_ping_after_idle` ago; SQLAlchemy has replaced the pool's connections since.
        if not error.connection_invalidated:
            raise
        await _delete_all(runtime)
    runtime.caches.clear()
    runtime.login_throttle.clear()
    runtime.last_used = type(runtime.last_used)(runtime.autocommit, runtime.settings.last_used_interval)


async def _delete_all(runtime: Runtime) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    async with runtime.engine.begin() as conn:
        for table in tables:
            await conn.execute(text(f"DELETE FROM {table}"))  # table names from metadata
        if conn.dialect.name == "postgresql":
            # DELETE + restarting the used sequences is ~20x faster than TRUNCATE on a few rows
            # (TRUNCATE rewrites every table's files); ids still start at 1 in every test.
            used = await conn.execute(
                text("SELECT schemaname, sequencename FROM pg_sequences WHERE last_value IS NOT NULL")
            )
            for schema, sequence in used.all():
                await conn.execute(text(f'ALTER SEQUENCE "{schema}"."{sequence}" RESTART'))


@asynccontextmanager
async def unit_of_work(runtime: Runtime) -> AsyncIterator[AsyncSession]:
    """A session that commits like a writing request does (invalidations included)."""
    async with runtime.writer_sessionmaker() as session:
        yield session
        await db.commit(session)


def client_for(app: object) -> httpx.AsyncClient:
    # An exception that escapes the app's own handlers reaches the server, which closes the client's
    # connection: the test fails there, whatever status was sent first.
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    hooks = {"request": [remember_basic_password, remember_secret_value]}
    return httpx.AsyncClient(transport=transport, base_url="http://test", event_hooks=hooks)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Token {key}"}


@dataclass
class Actor:
    """A seeded user, with the credential it authenticates with."""

    name: str
    user: User
    profile: UserProfile
    key: str
    key_row: ApiKey

    @property
    def headers(self) -> dict[str, str]:
        return auth(self.key)


@dataclass
class World:
    """Platform account + admin, and two tenants (A, B) with a staff and a regular user each.

    Staff authenticate with named API keys, regular users with login tokens (keys are staff-only).
    `multi` is a regular user with profiles in both A and B (A first).
    """

    platform: Account
    account_a: Account
    account_b: Account
    actors: dict[str, Actor] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Actor:
        return self.actors[name]


async def seed_world(runtime: Runtime) -> World:
    async with unit_of_work(runtime) as session:
        admin_key = await bootstrap(session)
        assert admin_key is not None
        platform = await accounts.get_by_number(session, "3141-5926-5359")
        assert platform is not None
        admin = await users.get_by_username(session, "admin")
        assert admin is not None
        admin_profile = (await profiles.profiles_of(session, admin.id))[0]
        admin_key_row = await session.get(ApiKey, 1)
        assert admin_key_row is not None
        world = World(
            platform=platform,
            account_a=await accounts.create_account(session, name="tenant_a", company_name="Tenant A Inc."),
            account_b=await accounts.create_account(session, name="tenant_b", company_name="Tenant B Inc."),
        )
        world.actors["superuser"] = Actor("superuser", admin, admin_profile, admin_key, admin_key_row)
        for tenant, account in (("a", world.account_a), ("b", world.account_b)):
            for role in ("staff", "regular"):
                name = f"{role}_{tenant}"
                user = await users.create_user(
                    session, username=name, email=f"{name}@example.com", is_staff=role == "staff"
                )
                profile = await profiles.add_profile(session, user, account)
                if role == "staff":
                    row, key = await api_keys.issue_key(session, user=user, profile=profile, name=f"{name}_key")
                else:
                    row, key = await api_keys.issue_login_token(session, user, 3600)
                world.actors[name] = Actor(name, user, profile, key, row)
        multi = await users.create_user(session, username="multi", email="multi@example.com")
        multi_profile = await profiles.add_profile(session, multi, world.account_a)
        await profiles.add_profile(session, multi, world.account_b)
        row, key = await api_keys.issue_login_token(session, multi, 3600)
        world.actors["multi"] = Actor("multi", multi, multi_profile, key, row)
    return world


@contextmanager
def observe_statements(runtime: Runtime, observe: Callable[[str], None]) -> Iterator[None]:
    """Call `observe` with the SQL of every statement the runtime sends while active: SQLAlchemy's on its
    engine, and its reader's (on PostgreSQL asyncpg runs those itself, unseen by SQLAlchemy's events)."""

    def on_cursor(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        observe(statement)

    engine = runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", on_cursor)
    runtime.reader.observers.append(observe)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", on_cursor)
        runtime.reader.observers.remove(observe)


@contextmanager
def statements(runtime: Runtime) -> Iterator[list[str]]:
    """The SQL statements the app sends while active (transaction control left out)."""
    seen: list[str] = []

    def record(statement: str) -> None:
        if statement not in TRANSACTION_CONTROL:
            seen.append(statement)

    with observe_statements(runtime, record):
        yield seen
