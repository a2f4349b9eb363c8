"""`smarter-core`: serve, migrate, and the operator commands (create-superuser, create-api-key, set-password)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, TypeVar

import typer
import uvicorn
from alembic import command
from sqlalchemy.ext.asyncio import AsyncSession

from app import db, observe
from app.config import get_settings
from app.errors import AppError
from app.identifiers import PLATFORM_ACCOUNT_NUMBER
from app.models.base import utcnow
from app.services import accounts, api_keys, passwords, profiles, users
from app.services.bootstrap import bootstrap
from app.services.cache import CacheRegistry
from app.text import normalise_name

cli = typer.Typer(help="smarter-core: the Smarter platform core service.", no_args_is_help=True)
T = TypeVar("T")


@asynccontextmanager
async def unit_of_work():  # type: ignore[no-untyped-def]
    """A session that commits through `app.db.commit`, so caches of running servers are invalidated too."""
    settings = get_settings()
    engine = db.create_engine(settings)
    try:
        session = db.create_sessionmaker(engine, CacheRegistry(ttl=0, maxsize=1))()
        async with session:
            yield session
            await db.commit(session)
    finally:
        await engine.dispose()


def run(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run one unit of work; a domain error becomes a clear message and exit code 1."""

    async def main() -> T:
        async with unit_of_work() as session:
            return await work(session)

    try:
        return asyncio.run(main())
    except AppError as error:
        typer.echo(f"Error: {error.detail}", err=True)
        raise typer.Exit(1) from None


def migrate_database() -> None:
    settings = get_settings()
    config = db.alembic_config(settings.database_url)
    config.attributes["skip_logging_config"] = True
    command.upgrade(config, "head")


@cli.command()
def migrate() -> None:
    """Bring the database schema to the newest migration."""
    migrate_database()
    typer.echo("Database is at the newest migration.")


def print_admin_banner(key: str) -> None:
    line = "=" * 78
    typer.echo(
        f"\n{line}\n  First start: created the platform account {PLATFORM_ACCOUNT_NUMBER} and the superuser 'admin'.\n"
        f"  Admin API key (shown once, store it now):\n\n  {key}\n\n"
        f"  Use it as:  Authorization: Token <key>   (Swagger UI: /docs -> Authorize)\n{line}\n"
    )


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
    access_log: Annotated[bool, typer.Option(help="Log each request.")] = True,
) -> None:
    """Migrate, bootstrap an empty database, then serve."""
    settings = get_settings()
    log_config = observe.prepare_serving(settings, workers=workers or settings.workers, access_log=access_log)
    migrate_database()
    admin_password = settings.admin_password.get_secret_value() if settings.admin_password else None
    key = run(lambda session: bootstrap(session, admin_password=admin_password))
    if key is not None:
        print_admin_banner(key)
    sys.stdout.flush()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
        log_level=settings.log_level,
        log_config=log_config,
        access_log=False,  # ours (`app.observe`) replaces uvicorn's
        # A worker answers uvicorn's health check only once it has imported the CLI (spawned workers re-import
        # `__main__`); on a busy host that takes longer than uvicorn's 5 s, and it killed them in a loop.
        timeout_worker_healthcheck=60,
    )


@cli.command("create-superuser")
def create_superuser(
    username: Annotated[str, typer.Option(help="The new superuser's username.")],
    email: Annotated[str, typer.Option(help="Their email address.")],
    password: Annotated[str | None, typer.Option(help="A password (omit for API-key-only access).")] = None,
) -> None:
    """Create a superuser (staff too) with a profile in the platform account. Idempotent for an existing superuser."""

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
            session, username=username, email=email, password=password, is_staff=True, is_superuser=True
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

    async def work(session: AsyncSession) -> str:
        user = await users.get_by_username(session, username)
        if user is None:
            raise AppError(f"No user named {username!r}.")
        owned = await profiles.profiles_of(session, user.id)
        if not owned:
            raise AppError(f"User {username!r} has no profile in any account.")
        try:
            key_name = normalise_name(name)
        except ValueError as exc:
            raise AppError(str(exc)) from exc
        expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
        _, plaintext = await api_keys.issue_key(session, user=user, profile=owned[0], name=key_name, expires_at=expires)
        return plaintext

    plaintext = run(work)
    typer.echo(f"Created API key for {username!r} (shown once):")
    typer.echo(plaintext)


@cli.command("set-password")
def set_password(
    username: Annotated[str, typer.Argument(help="Whose password to set.")],
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input.")] = False,
) -> None:
    """Set a user's password (prompted, or read from stdin)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        typer.echo("Error: the password is empty.", err=True)
        raise typer.Exit(1)

    async def work(session: AsyncSession) -> None:
        user = await users.get_by_username(session, username)
        if user is None:
            raise AppError(f"No user named {username!r}.")
        user.password = await passwords.hash_password(password)

    run(work)
    typer.echo(f"Password set for {username!r}.")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
