"""`smarter-core`: serve, migrate, and the operator commands (create-superuser, create-api-key, set-password,
generate-secrets-key, rotate-secrets).

Every failure is one `Error: …` line on stderr and exit code 1 or 2 (`app.cli_failures`), never a traceback.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from typing import Annotated, Any, TypeVar

import typer
import uvicorn
from alembic import command
from pydantic import TypeAdapter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from typer.core import TyperGroup

from app import __version__, db, observe
from app.caching.registry import CacheRegistry
from app.cli_failures import USAGE, Failure, checked, describe
from app.config import Settings, get_settings
from app.db_errors import is_database_unavailable
from app.errors import AppError
from app.identifiers import PLATFORM_ACCOUNT_NUMBER
from app.models.base import utcnow
from app.schemas.base import Username
from app.schemas.users import Password, RequiredEmail
from app.services import accounts, api_keys, profiles, users
from app.services.bootstrap import bootstrap
from app.services.secrets import cipher as secrets_cipher
from app.services.secrets import rotation
from app.text import normalise_name

T = TypeVar("T")

USERNAME: TypeAdapter[str] = TypeAdapter(Username)
EMAIL: TypeAdapter[str] = TypeAdapter(RequiredEmail)
PASSWORD: TypeAdapter[str] = TypeAdapter(Password)


class OneLineErrors(TyperGroup):
    """Turns whatever a command raises into one `Error: …` line and its exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, SystemExit):
            raise  # an exit code (uvicorn exits 1 itself, after logging why, when it cannot listen)
        except typer.Abort:  # a prompt that got no input (or ^C at it)
            failure = Failure("aborted (no input).")
        except typer.TyperException as exc:  # a usage error: an unknown option, a missing or malformed value
            failure = usage_failure(exc)
        except BaseException as exc:  # nothing reaches the operator as a traceback
            failure = describe(exc, _database_shown())
        typer.echo(f"Error: {failure.message}", err=True)
        raise typer.Exit(failure.exit_code)


def usage_failure(exc: typer.TyperException) -> Failure:
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    command = getattr(getattr(exc, "ctx", None), "command_path", None)
    hint = f" (see `{command} --help`)" if command else ""
    return Failure(f"{message}{hint}", getattr(exc, "exit_code", USAGE))


def _database_shown() -> str | None:
    with suppress(Exception):  # the settings themselves may be what failed
        return db.display_url(get_settings().database_url)
    return None


cli = typer.Typer(
    cls=OneLineErrors,
    help="smarter-core: the Smarter platform core service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"smarter-core {__version__}")
        raise typer.Exit()


@cli.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """smarter-core: the Smarter platform core service."""


@asynccontextmanager
async def unit_of_work() -> AsyncIterator[AsyncSession]:
    """A writing session that commits through `app.db.commit`, so running servers' caches are invalidated too."""
    engine = db.create_engine(get_settings())
    try:
        session = db.create_sessionmaker(db.writer_engine(engine), CacheRegistry(ttl=0, maxsize=1))()
        async with session:
            yield session
            await db.commit(session)
    finally:
        await engine.dispose()


def run(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run one unit of work (its errors become one line in `OneLineErrors`)."""

    async def main() -> T:
        async with unit_of_work() as session:
            return await work(session)

    return asyncio.run(main())


def migrate_database() -> None:
    """Upgrade to head; on PostgreSQL under the start-up lock (`migrations/env.py`)."""
    settings = get_settings()
    config = db.alembic_config(settings.database_url)
    config.attributes["skip_logging_config"] = True
    command.upgrade(config, "head")


@cli.command()
def migrate() -> None:
    """Bring the database schema to the newest migration."""
    migrate_database()
    typer.echo("Database is at the newest migration.")


async def wait_for_database(settings: Settings) -> str | None:
    """The schema's revision, once the database answers; retried with backoff up to `db_startup_timeout`.

    Only what may pass is waited for (refused or lost connections, a server starting up, too many
    clients); a wrong password or a missing database fails at once. SQLite is tried once.
    """
    deadline = time.monotonic() + settings.db_startup_timeout
    delay = 0.25
    engine = db.create_engine(settings)
    try:
        while True:
            try:
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
                    return await db.current_revision(connection)
            except Exception as exc:
                transient = not settings.is_sqlite and is_database_unavailable(exc)
                if not transient or time.monotonic() + delay > deadline:
                    failure = describe(exc, db.display_url(settings.database_url))
                    if transient:
                        failure.message += f" (waited {settings.db_startup_timeout:g} s)"
                    raise failure from None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    finally:
        await engine.dispose()


def print_admin_banner(key: str) -> None:
    line = "=" * 78
    typer.echo(
        f"\n{line}\n  First start: created the platform account {PLATFORM_ACCOUNT_NUMBER} and the superuser 'admin'.\n"
        f"  Admin API key (shown once, store it now):\n\n  {key}\n\n"
        f"  Use it as:  Authorization: Token <key>   (Swagger UI: /docs -> Authorize)\n{line}\n"
    )


def refuse_several_sqlite_workers(settings: Settings, workers: int) -> None:
    if workers > 1 and settings.is_sqlite:
        raise Failure(
            f"{workers} workers (--workers / SMARTER_CORE_WORKERS) need PostgreSQL: SQLite takes one writing "
            "process, and each worker would cache keys on its own (a revoked key would keep working on the "
            "others). Set DATABASE_URL to a PostgreSQL database, or serve with one worker.",
            USAGE,
        )


def prepare_secrets_keys(settings: Settings) -> None:
    """PostgreSQL without `SMARTER_CORE_SECRETS_KEYS` is refused; SQLite without it gets its key file now,
    before any worker starts (`app.services.secrets.cipher`)."""
    if settings.secrets_keys is None and not settings.is_sqlite:
        raise Failure(
            "SMARTER_CORE_SECRETS_KEYS is not set: with PostgreSQL, secrets need a key "
            "(create one with `smarter-core generate-secrets-key`).",
            USAGE,
        )
    secrets_cipher.configured_keys(settings)


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes (several need PostgreSQL).")] = None,
    access_log: Annotated[bool, typer.Option(help="Log each request.")] = True,
    migrate: Annotated[
        bool, typer.Option(help="Migrate before serving; --no-migrate when migrations run as a separate step.")
    ] = True,
) -> None:
    """Wait for the database, migrate, bootstrap an empty database, then serve."""
    settings = get_settings()
    workers = workers or settings.workers
    refuse_several_sqlite_workers(settings, workers)
    log_config = observe.prepare_serving(settings, workers=workers, access_log=access_log)
    revision = asyncio.run(wait_for_database(settings))
    prepare_secrets_keys(settings)  # before the schema or anything else is touched
    if migrate:
        migrate_database()
    elif revision != db.migration_head():
        raise Failure(
            f"the database schema is at {revision or 'no revision'}, not {db.migration_head()}: "
            "run `smarter-core migrate` first (or serve without --no-migrate)."
        )
    admin_password = settings.admin_password.get_secret_value() if settings.admin_password else None

    async def first_start(session: AsyncSession) -> str | None:
        await db.lock_for_startup(session)  # replicas starting together: one bootstraps
        return await bootstrap(session, admin_password=admin_password)

    key = run(first_start)
    if key is not None:
        print_admin_banner(key)
    sys.stdout.flush()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level=settings.log_level,
        log_config=log_config,
        access_log=False,  # ours (`app.observe`) replaces uvicorn's
        # A worker answers uvicorn's health check only once it has imported the CLI (spawned workers re-import
        # `__main__`); on a busy host that takes longer than uvicorn's 5 s, and it killed them in a loop.
        timeout_worker_healthcheck=60,
    )


def read_password(from_stdin: bool) -> str:
    """A password from one line of stdin, or from a hidden prompt (typed twice); checked by the API's rules."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not sys.stdin.isatty():
        raise Failure("no terminal to prompt for the password on: give it on stdin with --password-stdin.", USAGE)
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise Failure("the password is empty.", USAGE)
    checked(PASSWORD, password, "the password")
    return password


PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input.")]


@cli.command("create-superuser")
def create_superuser(
    username: Annotated[str, typer.Option(help="The new superuser's username.")],
    email: Annotated[str, typer.Option(help="Their email address.")],
    password: Annotated[bool, typer.Option("--password", help="Prompt for a password (default: none).")] = False,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a superuser (staff too) with a profile in the platform account. Idempotent for an existing superuser.

    Without a password the superuser uses API keys only (`create-api-key`).
    """
    checked(USERNAME, username, "--username")
    checked(EMAIL, email, "--email")
    secret = read_password(password_stdin) if password or password_stdin else None

    async def work(session: AsyncSession) -> str:
        existing = await users.get_by_username(session, username)
        if existing is not None:
            if existing.is_superuser:
                return f"Superuser {username!r} already exists; nothing changed."
            raise AppError(f"User {username!r} exists and is not a superuser.")
        platform = await accounts.get_by_number(session, PLATFORM_ACCOUNT_NUMBER)
        if platform is None:
            raise AppError("The platform account does not exist yet: run `smarter-core serve` once first.")
        user = await users.create_user(
            session, username=username, email=email, password=secret, is_staff=True, is_superuser=True
        )
        await profiles.add_profile(session, user, platform)
        return f"Created superuser {username!r}."

    typer.echo(run(work))


@cli.command("create-api-key")
def create_api_key(
    username: Annotated[str, typer.Option(help="The key's user (must be staff).")],
    name: Annotated[str, typer.Option(help="The key's name, unique per owner profile.")],
    expires_in_days: Annotated[int | None, typer.Option(min=1, help="Expire after this many days.")] = None,
) -> None:
    """Issue an API key; the plaintext key is printed alone on the last line."""
    try:
        key_name = normalise_name(name)
    except ValueError as exc:
        raise Failure(f"--name: {exc}", USAGE) from None

    async def work(session: AsyncSession) -> str:
        user = await users.get_by_username(session, username)
        if user is None:
            raise AppError(f"No user named {username!r}.")
        owned = await profiles.profiles_of(session, user.id)
        if not owned:
            raise AppError(f"User {username!r} has no profile in any account.")
        expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
        _, plaintext = await api_keys.issue_key(session, user=user, profile=owned[0], name=key_name, expires_at=expires)
        return plaintext

    plaintext = run(work)
    typer.echo(f"Created API key for {username!r} (shown once):")
    typer.echo(plaintext)


@cli.command("set-password")
def set_password(
    username: Annotated[str, typer.Argument(help="Whose password to set.")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Set a user's password (prompted, or read from stdin)."""
    password = read_password(password_stdin)

    async def work(session: AsyncSession) -> None:
        user = await users.get_by_username(session, username)
        if user is None:
            raise AppError(f"No user named {username!r}.")
        await users.set_password(session, user, password)

    run(work)
    typer.echo(f"Password set for {username!r}.")


@cli.command("generate-secrets-key")
def generate_secrets_key() -> None:
    """Print a new key for SMARTER_CORE_SECRETS_KEYS (put it first; keep the old keys after it until
    `rotate-secrets` has run)."""
    typer.echo(secrets_cipher.generate_key())


@cli.command("rotate-secrets")
def rotate_secrets() -> None:
    """Re-encrypt every secret with the newest key (the first of SMARTER_CORE_SECRETS_KEYS)."""
    cipher = secrets_cipher.SecretCipher.for_settings(get_settings())
    if not cipher.configured:
        raise Failure(secrets_cipher.KEYS_MISSING, USAGE)
    count = run(lambda session: rotation.rotate_all(session, cipher))
    typer.echo(f"Re-encrypted {count} secret{'' if count == 1 else 's'} with the newest key.")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
