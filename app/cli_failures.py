"""What an operator command prints when it fails: one `Error: …` line and an exit code, never a traceback.

Exit 2 for what the operator gave (settings, options, input); exit 1 for what happened (the database, a
refused change, anything unexpected).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from alembic.util import CommandError
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.config import Settings
from app.db_errors import is_database_unavailable
from app.errors import AppError

USAGE = 2
FAILURE = 1


class Failure(Exception):
    """A failure already put in words for the operator."""

    def __init__(self, message: str, exit_code: int = FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else ""


def _reasons(items: Iterable[Mapping[str, Any]], name_of: Any) -> str:
    # Pydantic's messages, never its `input` (it may be a password).
    return "; ".join(
        f"{name_of(item.get('loc', ()))}: {str(item.get('msg', 'invalid')).removeprefix('Value error, ')}"
        for item in items
    )


def _setting_name(loc: tuple[Any, ...]) -> str:
    field = str(loc[0]) if loc else "?"
    if field == "database_url":
        return "DATABASE_URL"
    prefix = str(Settings.model_config.get("env_prefix", ""))
    return f"{prefix}{field}".upper()


def checked(adapter: TypeAdapter[Any], value: object, what: str) -> Any:
    """`value` validated by one of the API's field types (`app.schemas`); a refusal names `what`."""
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        raise Failure(_reasons(exc.errors(), lambda _loc: what), USAGE) from None


def describe(exc: BaseException, database_url: str | None) -> Failure:
    """The one line (and exit code) an exception that reached a command becomes."""
    if isinstance(exc, Failure):
        return exc
    if isinstance(exc, ValidationError):  # the settings (commands validate their input with `checked`)
        return Failure(f"invalid setting: {_reasons(exc.errors(), _setting_name)}", USAGE)
    if isinstance(exc, AppError):
        return Failure(exc.detail)
    if isinstance(exc, KeyboardInterrupt):
        return Failure("interrupted.", 130)
    where = f"the database at {database_url}" if database_url else "the database"
    if isinstance(exc, PoolTimeoutError):
        return Failure(f"{where} is busy: {_first_line(exc)}")
    if isinstance(exc, DBAPIError | OSError | TimeoutError):
        reason = _first_line(exc.orig if isinstance(exc, DBAPIError) else exc) or type(exc).__name__
        if isinstance(exc, OSError | TimeoutError) or is_database_unavailable(exc):
            return Failure(f"cannot use {where}: {reason}")
        return Failure(f"{where} refused: {reason}")  # a wrong role or database name, a constraint
    if isinstance(exc, CommandError):
        return Failure(f"migration failed: {_first_line(exc)}")
    if isinstance(exc, SQLAlchemyError):
        return Failure(f"database error ({type(exc).__name__}): {_first_line(exc)}")
    return Failure(f"unexpected {type(exc).__name__}: {_first_line(exc)}")
