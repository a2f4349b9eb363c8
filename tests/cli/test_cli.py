"""The `smarter-core` command line: migrate, serve (first-start bootstrap), and the operator commands.

Operator commands run in-process through typer's CliRunner (in a worker thread: each command runs its
own event loop), against a fresh database; `serve` runs as the real console script in a subprocess.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from typer.testing import CliRunner, Result

from app import db
from app.cli import cli
from app.config import get_settings
from app.identifiers import PLATFORM_ACCOUNT_NUMBER
from app.main import create_app
from app.models import Account, ApiKey, User, UserProfile
from app.runtime import Runtime
from app.services import accounts, keys, profiles, users
from app.services.bootstrap import bootstrap
from tests import support
from tests.auth.helpers import LIGHT_PROBE, PROBE
from tests.cli import Server, revision_of

KEY_LINE = re.compile(r"^\s*([0-9a-f]{64})\s*$", re.MULTILINE)


def invoke(url: str, *args: str, stdin: str | None = None) -> Result:
    """Run one command as an operator would, with DATABASE_URL pointing at `url`."""
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(cli, list(args), input=stdin, env={"DATABASE_URL": url})
    finally:
        get_settings.cache_clear()


async def run_cli(url: str, *args: str, stdin: str | None = None) -> Result:
    return await asyncio.to_thread(invoke, url, *args, stdin=stdin)


async def drop(url: str) -> None:
    if url.startswith("postgresql"):
        await support.drop_postgres_database(url)


class Operator:
    """A migrated, bootstrapped database, and the app serving it (to check what the commands did)."""

    def __init__(self, url: str, app: FastAPI, admin_key: str) -> None:
        self.url = url
        self.app = app
        self.admin_key = admin_key

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    def client(self) -> httpx.AsyncClient:
        return support.client_for(self.app)

    async def user(self, username: str) -> User | None:
        async with self.runtime.sessionmaker() as session:
            return await users.get_by_username(session, username)


@pytest.fixture(scope="module")
async def operator() -> AsyncIterator[Operator]:
    url = await support.fresh_database_url()
    await asyncio.to_thread(support.migrate, url)
    app = create_app(support.test_settings(url))
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        async with support.unit_of_work(runtime) as session:
            admin_key = await bootstrap(session)
        assert admin_key is not None
        yield Operator(url, app, admin_key)
    await drop(url)


async def test_migrate_brings_an_empty_database_to_head_and_is_idempotent(empty_url: str) -> None:
    assert await revision_of(empty_url) is None
    for _ in range(2):
        result = await run_cli(empty_url, "migrate")
        assert result.exit_code == 0, result.output
        assert "Database is at the newest migration." in result.stdout
    assert await revision_of(empty_url) == db.migration_head()


async def test_migrate_creates_the_directory_of_a_new_sqlite_file(tmp_path: Path) -> None:
    """A fresh checkout has no `var/`: `make run` migrates into a directory that does not exist yet."""
    database = tmp_path / "not" / "yet" / "there.sqlite3"
    url = f"sqlite+aiosqlite:///{database}"
    result = await run_cli(url, "migrate")
    assert result.exit_code == 0, result.output
    assert database.is_file()
    assert await revision_of(url) == db.migration_head()


async def test_create_superuser(operator: Operator) -> None:
    result = await run_cli(operator.url, "create-superuser", "--username", "root", "--email", "root@example.com")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Created superuser 'root'."
    user = await operator.user("root")
    assert user is not None
    assert (user.is_superuser, user.is_staff, user.is_active, user.email) == (True, True, True, "root@example.com")
    assert user.password == ""  # no password given: API keys only
    async with operator.runtime.sessionmaker() as session:
        accounts = (
            await session.execute(
                select(Account.account_number)
                .join(UserProfile, UserProfile.account_id == Account.id)
                .where(UserProfile.user_id == user.id)
            )
        ).scalars()
        assert list(accounts) == [PLATFORM_ACCOUNT_NUMBER]

    again = await run_cli(operator.url, "create-superuser", "--username", "root", "--email", "other@example.com")
    assert again.exit_code == 0, again.output
    assert "already exists; nothing changed" in again.stdout
    unchanged = await operator.user("root")
    assert unchanged is not None
    assert unchanged.email == "root@example.com"


async def test_create_superuser_with_a_password_from_stdin(operator: Operator) -> None:
    args = ("create-superuser", "--username", "keyed", "--email", "keyed@example.com", "--password-stdin")
    result = await run_cli(operator.url, *args, stdin="a long passphrase\n")
    assert result.exit_code == 0, result.output
    assert "passphrase" not in result.output
    async with operator.client() as http:
        response = await http.post("/api/v1/auth/login/", auth=("keyed", "a long passphrase"))
        assert response.status_code == 200, response.text


async def test_create_superuser_refuses_an_existing_ordinary_user(operator: Operator) -> None:
    async with support.unit_of_work(operator.runtime) as session:
        await users.create_user(session, username="plain", email="plain@example.com")
    result = await run_cli(operator.url, "create-superuser", "--username", "plain", "--email", "plain@example.com")
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: User 'plain' exists and is not a superuser."
    user = await operator.user("plain")
    assert user is not None
    assert not user.is_superuser


async def test_create_superuser_needs_the_platform_account(empty_url: str) -> None:
    await asyncio.to_thread(support.migrate, empty_url)
    result = await run_cli(empty_url, "create-superuser", "--username", "early", "--email", "early@example.com")
    assert result.exit_code == 1
    assert "The platform account does not exist yet" in result.stderr


async def test_create_superuser_usage_errors_exit_2(operator: Operator) -> None:
    result = await run_cli(operator.url, "create-superuser", "--username", "nomail")
    assert result.exit_code == 2


async def test_create_api_key_prints_a_working_key_alone_on_the_last_line(operator: Operator) -> None:
    result = await run_cli(operator.url, "create-api-key", "--username", "admin", "--name", "Deploy Key")
    assert result.exit_code == 0, result.output
    lines = result.stdout.rstrip("\n").split("\n")
    key = lines[-1]
    assert keys.is_well_formed(key)
    assert key not in "\n".join(lines[:-1])
    async with operator.runtime.sessionmaker() as session:
        row = (await session.execute(select(ApiKey).where(ApiKey.digest == keys.digest_of(key)))).scalar_one()
    assert (row.name, row.kind, row.expires_at) == ("deploy_key", "api_key", None)
    async with operator.client() as http:
        for path in (LIGHT_PROBE, PROBE):
            response = await http.get(path, headers=support.auth(key))
            assert response.status_code == 200, response.text

    expiring = await run_cli(
        operator.url, "create-api-key", "--username", "admin", "--name", "short", "--expires-in-days", "2"
    )
    assert expiring.exit_code == 0, expiring.output
    async with operator.runtime.sessionmaker() as session:
        digest = keys.digest_of(expiring.stdout.strip().split("\n")[-1])
        expires = (await session.execute(select(ApiKey.expires_at).where(ApiKey.digest == digest))).scalar_one()
    assert expires is not None

    duplicate = await run_cli(operator.url, "create-api-key", "--username", "admin", "--name", "deploy_key")
    assert duplicate.exit_code == 1
    assert duplicate.stderr.startswith("Error: ")
    assert "already exists" in duplicate.stderr


async def test_create_api_key_refusals(operator: Operator) -> None:
    async with support.unit_of_work(operator.runtime) as session:
        await users.create_user(session, username="nonstaff", email="nonstaff@example.com")
        staff = await users.create_user(session, username="homeless", email="homeless@example.com", is_staff=True)
        assert staff.id
    cases = {
        ("--username", "nonstaff"): "Error: User 'nonstaff' has no profile in any account.",
        ("--username", "ghost"): "Error: No user named 'ghost'.",
        ("--username", "homeless"): "Error: User 'homeless' has no profile in any account.",
    }
    for args, message in cases.items():
        result = await run_cli(operator.url, "create-api-key", *args, "--name", "k")
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr.strip() == message
        assert result.stdout == ""
    bad_name = await run_cli(operator.url, "create-api-key", "--username", "admin", "--name", "bad\tname")
    assert bad_name.exit_code == 2
    assert bad_name.stderr.startswith("Error: ")
    assert (
        await run_cli(operator.url, "create-api-key", "--username", "admin", "--name", "x", "--expires-in-days", "0")
    ).exit_code == 2


async def test_create_api_key_for_a_non_staff_member_is_refused(operator: Operator) -> None:
    async with support.unit_of_work(operator.runtime) as session:
        platform = await accounts.get_by_number(session, PLATFORM_ACCOUNT_NUMBER)
        assert platform is not None
        member = await users.create_user(session, username="member", email="member@example.com")
        await profiles.add_profile(session, member, platform)
    result = await run_cli(operator.url, "create-api-key", "--username", "member", "--name", "k")
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: API keys can only be created for staff users."
    assert result.stdout == ""
    async with operator.runtime.sessionmaker() as session:
        count = (await session.execute(text("SELECT count(*) FROM api_key WHERE name = 'k'"))).scalar_one()
    assert count == 0


async def test_set_password_from_stdin_then_login(operator: Operator) -> None:
    async with support.unit_of_work(operator.runtime) as session:
        await users.create_user(session, username="pat", email="pat@example.com")
    result = await run_cli(operator.url, "set-password", "pat", "--password-stdin", stdin="Pässw0rd with spaces\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Password set for 'pat'."
    assert "Pässw0rd" not in result.output
    async with operator.client() as http:
        response = await http.post("/api/v1/auth/login/", auth=("pat", "Pässw0rd with spaces"))
        assert response.status_code == 200, response.text
        token = response.json()["token"]
        assert (await http.get(PROBE, headers=support.auth(token))).status_code == 200
        wrong = await http.post("/api/v1/auth/login/", auth=("pat", "Pässw0rd with spaces\n"))
        assert wrong.status_code == 401

    unknown = await run_cli(operator.url, "set-password", "nobody", "--password-stdin", stdin="long enough\n")
    assert unknown.exit_code == 1
    assert unknown.stderr.strip() == "Error: No user named 'nobody'."
    # The API's password rules (8 to 1024 characters), checked before anything is looked up.
    refused = {"\n": "Error: the password is empty.", "short\n": "at least 8 characters", "x" * 5_000: "at most 1024"}
    for stdin, message in refused.items():
        result = await run_cli(operator.url, "set-password", "pat", "--password-stdin", stdin=stdin)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("Error: ")
        assert message in result.stderr
    async with operator.client() as http:  # the password set above still holds
        assert (await http.post("/api/v1/auth/login/", auth=("pat", "Pässw0rd with spaces"))).status_code == 200


# --- serve ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_serve_bootstraps_an_empty_database_once(empty_url: str, tmp_path: Path) -> None:
    first = Server(empty_url, tmp_path / "first.log")
    try:
        first.wait_ready()
        banner = first.output()
        found = KEY_LINE.findall(banner)
        assert len(found) == 1, banner
        key = found[0]
        assert "First start" in banner
        assert PLATFORM_ACCOUNT_NUMBER in banner
        with httpx.Client(base_url=first.base, timeout=5) as http:
            assert http.get("/readyz").json()["revision"] == db.migration_head()
            for path in (LIGHT_PROBE, PROBE):
                response = http.get(path, headers=support.auth(key))
                assert response.status_code == 200, response.text
            assert http.get(PROBE).status_code == 401
    finally:
        first.stop()

    second = Server(empty_url, tmp_path / "second.log")
    try:
        second.wait_ready()
        with httpx.Client(base_url=second.base, timeout=5) as http:
            assert http.get(LIGHT_PROBE, headers=support.auth(key)).status_code == 200
    finally:
        second.stop()
    output = second.output()
    assert KEY_LINE.findall(output) == []
    assert "First start" not in output
    assert key not in output
