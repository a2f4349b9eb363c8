"""The console script as an operator runs it (subprocesses): every failure is one `Error:` line, exit 1 or 2.

Also: `serve` waits for a database that is not up yet, refuses several workers on SQLite before it
listens, and `--no-migrate`; processes that start together on a fresh PostgreSQL database migrate and
bootstrap once (the start-up advisory lock).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from app import __version__, db
from app.cli import cli
from app.config import PROJECT_ROOT, get_settings
from app.models import User
from tests import support
from tests.auth.helpers import free_port
from tests.cli import SMARTER_CORE, Server, revision_of

NOBODY_LISTENS = f"postgresql://postgres@127.0.0.1:{free_port()}/smarter"


def smarter_core(
    *args: str, env: dict[str, str] | None = None, stdin: str = "", timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The console script in a subprocess, with only the settings given in `env`."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SMARTER_CORE_") and k != "DATABASE_URL"}
    environment.update(env or {})
    return subprocess.run(
        [str(SMARTER_CORE), *args],
        cwd=PROJECT_ROOT,
        env=environment,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def in_process(*args: str, env: dict[str, str] | None = None, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The same command line through typer's runner (the same code path, without a Python start-up each)."""
    settings = {k: None for k in os.environ if k.startswith("SMARTER_CORE_") or k == "DATABASE_URL"}
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, list(args), input=stdin, env={**settings, **(env or {})})
    finally:
        get_settings.cache_clear()
    assert isinstance(result.exception, SystemExit | None), result.exception  # nothing escaped the command
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def assert_one_error_line(result: subprocess.CompletedProcess[str], exit_code: int, *words: str) -> str:
    assert result.returncode == exit_code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


# Every command, with what it needs to get as far as the database.
COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "serve": (("serve",), ""),
    "migrate": (("migrate",), ""),
    "create-superuser": (("create-superuser", "--username", "root", "--email", "root@example.com"), ""),
    "create-api-key": (("create-api-key", "--username", "admin", "--name", "deploy"), ""),
    "set-password": (("set-password", "admin", "--password-stdin"), "long enough password\n"),
}
UNREACHABLE = {"DATABASE_URL": NOBODY_LISTENS, "SMARTER_CORE_DB_STARTUP_TIMEOUT": "0.5"}
BAD_SETTINGS = {"SMARTER_CORE_PORT": "abc", "SMARTER_CORE_DB_POOL_TIMEOUT": "-1", "SMARTER_CORE_LOG_LEVEL": "loud"}


def unopenable_sqlite(tmp_path: Path) -> dict[str, str]:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    return {"DATABASE_URL": f"sqlite:///{blocker}/smarter.sqlite3"}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_fails_in_one_line(name: str, tmp_path: Path) -> None:
    args, stdin = COMMANDS[name]
    line = assert_one_error_line(in_process(*args, env=UNREACHABLE, stdin=stdin), 1, "cannot use the database at")
    assert "Connect call failed" in line
    assert_one_error_line(in_process(*args, env=unopenable_sqlite(tmp_path), stdin=stdin), 1, "at sqlite")
    for setting, value in BAD_SETTINGS.items():
        env = {"DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3", setting: value}
        assert_one_error_line(in_process(*args, env=env, stdin=stdin), 2, "invalid setting", setting)
    assert not (tmp_path / "db.sqlite3").exists()  # refused before anything was touched


def test_the_console_script_fails_in_one_line(tmp_path: Path) -> None:
    """The real script, once per kind of failure (each start costs seconds): no traceback, one line."""
    assert_one_error_line(smarter_core("serve", env=UNREACHABLE), 1, "cannot use the database", "waited 0.5 s")
    assert_one_error_line(smarter_core("migrate", env={"SMARTER_CORE_PORT": "abc"}), 2, "SMARTER_CORE_PORT")
    assert_one_error_line(smarter_core(*COMMANDS["create-api-key"][0], env=unopenable_sqlite(tmp_path)), 1)
    bad_user = ("create-superuser", "--username", "Bad User!", "--email", "notanemail")
    assert_one_error_line(smarter_core(*bad_user, env={"DATABASE_URL": NOBODY_LISTENS}), 2, "--username")
    version = smarter_core("--version")
    assert (version.returncode, version.stdout.strip(), version.stderr) == (0, f"smarter-core {__version__}", "")


def test_the_api_rules_for_usernames_emails_and_passwords(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3"}
    cases = {
        ("--username", "Bad User!", "--email", "ok@example.com"): "--username: must be 1-150 letters",
        ("--username", "x" * 151, "--email", "ok@example.com"): "--username",
        ("--username", "good", "--email", "notanemail"): "--email: is not a valid email address.",
        ("--username", "good", "--email", ""): "--email",
    }
    for args, message in cases.items():
        assert_one_error_line(in_process("create-superuser", *args, env=env), 2, message)
    good = ("--username", "good", "--email", "good@example.com")
    # A password is never an argument: `--password` prompts (on a terminal), `--password-stdin` reads a line.
    assert_one_error_line(in_process("create-superuser", *good, "--password", "s3cret!!", env=env), 2)
    assert_one_error_line(in_process("create-superuser", *good, "--password", env=env), 2, "--password-stdin")
    short = in_process("create-superuser", *good, "--password-stdin", stdin="short\n", env=env)
    assert_one_error_line(short, 2, "at least 8")
    assert_one_error_line(in_process("set-password", "admin", env=env), 2, "--password-stdin")
    assert_one_error_line(in_process("serve", "--port", "abc", env=env), 2, "--port")
    assert not (tmp_path / "db.sqlite3").exists()


# --- serve ----------------------------------------------------------------------------------------------


def test_several_workers_on_sqlite_are_refused_before_listening(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3"}
    for args, more in ((("--workers", "2"), {}), ((), {"SMARTER_CORE_WORKERS": "3"})):
        result = in_process("serve", *args, env={**env, **more})
        assert_one_error_line(result, 2, "need PostgreSQL", "DATABASE_URL", "one worker")
        assert result.stdout == ""
    assert not (tmp_path / "db.sqlite3").exists()  # not even migrated


@pytest.mark.slow
def test_no_migrate(empty_url: str, tmp_path: Path) -> None:
    refused = smarter_core("serve", "--no-migrate", env={"DATABASE_URL": empty_url, **support.secrets_env(empty_url)})
    assert_one_error_line(refused, 1, "smarter-core migrate", db.migration_head())
    migrated = smarter_core("migrate", env={"DATABASE_URL": empty_url})
    assert migrated.returncode == 0, migrated.stderr
    server = Server(empty_url, tmp_path / "serve.log", "--no-migrate")
    try:
        server.wait_ready()
        assert "First start" in server.output()  # bootstrapped, without migrating
    finally:
        server.stop()


# --- PostgreSQL: a database that comes up late; processes that start together ------------------------------


@contextmanager
def forwarder(port: int, target: tuple[str, int], after: float) -> Iterator[None]:
    """From `after` seconds on, 127.0.0.1:`port` forwards to `target`: a database that comes up late."""
    loop = asyncio.new_event_loop()
    stopping = asyncio.Event()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*target)
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    async def serve() -> None:
        await asyncio.sleep(after)
        server = await asyncio.start_server(connect, "127.0.0.1", port)
        async with server:
            await stopping.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stopping.set)
        thread.join(10)
        loop.close()


@pytest.mark.postgres_only
@pytest.mark.slow
def test_serve_waits_for_a_database_that_comes_up_late(empty_url: str, tmp_path: Path) -> None:
    real = make_url(empty_url)
    port = free_port()
    late = real.set(drivername="postgresql", port=port).render_as_string(hide_password=False)
    with forwarder(port, (real.host or "127.0.0.1", real.port or 5432), after=2.0):
        server = Server(late, tmp_path / "serve.log", env={"SMARTER_CORE_DB_STARTUP_TIMEOUT": "60"})
        try:
            server.wait_ready()
            assert "First start" in server.output()
            assert "Traceback" not in server.output()
        finally:
            server.stop()


@pytest.mark.postgres_only
@pytest.mark.slow
def test_processes_starting_together_migrate_and_bootstrap_once(empty_url: str, tmp_path: Path) -> None:
    """Four `migrate` at once, on a fresh database, then three `serve` at once on another: the advisory lock
    makes one migrate (and bootstrap) while the others wait, then proceed and find it done."""
    env = {"DATABASE_URL": empty_url}
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: smarter_core("migrate", env=env, timeout=120), range(4)))
    for result in results:
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
    assert asyncio.run(revision_of(empty_url)) == db.migration_head()

    second = asyncio.run(support.fresh_database_url())
    try:
        servers = [Server(second, tmp_path / f"serve{n}.log") for n in range(3)]
        try:
            for server in servers:
                server.wait_ready()
            banners = [server.output().count("First start") for server in servers]
            assert sorted(banners) == [0, 0, 1], [server.output() for server in servers]
        finally:
            for server in servers:
                server.stop()
        assert asyncio.run(users_in(second)) == 1  # admin, once
    finally:
        asyncio.run(support.drop_postgres_database(second))


async def users_in(url: str) -> int:
    engine = db.create_engine(support.test_settings(url))
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(User))).scalar_one())
    finally:
        await engine.dispose()


def test_the_readme_shows_commands_that_exist() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    shown = set(re.findall(r"`smarter-core ([a-z][a-z-]*)", readme))
    assert {"serve", "migrate", "create-superuser", "create-api-key", "set-password"} <= shown
    for name in shown:
        result = in_process(name, "--help")
        assert result.returncode == 0, (name, result.stderr)
    assert "`.venv/bin/smarter-core --help`" in readme  # works on a fresh machine, where uv is not on PATH
