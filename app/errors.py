"""The domain's errors: what went wrong, with the HTTP status it means. Services raise them; how they are
answered over HTTP is `app.http_errors`, what a database error means is `app.db_errors`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, Field


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where the error is, e.g. ['body', 'name'].")
    msg: str
    type: str


class AppError(Exception):
    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"

    def __init__(
        self, detail: str, *, errors: list[FieldError] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


class BadRequest(AppError):
    status, slug = 400, "bad-request"


class Unauthorized(AppError):
    status, slug = 401, "unauthorized"

    def __init__(self, detail: str = "Invalid token.", *, scheme: str = "Token") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": scheme})


class Forbidden(AppError):
    status, slug = 403, "forbidden"


class NotFound(AppError):
    status, slug = 404, "not-found"


class MethodNotAllowed(AppError):
    status, slug = 405, "method-not-allowed"


class Conflict(AppError):
    status, slug = 409, "conflict"


class PayloadTooLarge(AppError):
    status, slug = 413, "payload-too-large"


class Unprocessable(AppError):
    status, slug = 422, "validation-error"

    @classmethod
    def field(cls, field: str, message: str, *, kind: str = "value_error", where: str = "body") -> Unprocessable:
        return cls(message, errors=[FieldError(loc=[where, field], msg=message, type=kind)])


class TooManyRequests(AppError):
    status, slug = 429, "too-many-requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class ServiceUnavailable(AppError):
    status, slug = 503, "service-unavailable"


def field_errors(items: Iterable[Mapping[str, Any]], *, prefix: Sequence[str | int] = ()) -> list[FieldError]:
    """Pydantic error items as FieldErrors (`prefix` + loc, msg, type), dropping `input` and `ctx`."""
    errors: list[FieldError] = []
    for item in items:
        # Never echo `input`: it may be a password or a key.
        loc = [*prefix, *(p if isinstance(p, int) else str(p) for p in item.get("loc", ()))]
        errors.append(FieldError(loc=loc, msg=str(item.get("msg", "Invalid value.")), type=str(item.get("type"))))
    return errors


# --- names that moved --------------------------------------------------------------------------------
# Importable from here as before (`from app.errors import render`), resolved on first use: the modules
# they moved to import this one. New code imports them from where they live.
_MOVED = {
    "app.http_errors": (
        "CLI_PREFIX", "PROBLEM_JSON", "REQUEST_ID_KEY", "Problem", "allowed_methods", "install_handlers",
        "is_cli_path", "journal_error_body", "problem_body", "render", "request_id_of",
    ),
    "app.db_errors": (
        "classify_integrity_error", "is_connection_lost", "is_database_unavailable", "is_refused_value",
    ),
    "app.models.constraints": ("UNIQUE_MESSAGES",),
    "app.schemas.journal": ("JOURNAL_API",),
}  # fmt: skip
_MOVED_TO = {name: module for module, names in _MOVED.items() for name in names}

if TYPE_CHECKING:
    from app.db_errors import classify_integrity_error as classify_integrity_error
    from app.db_errors import is_connection_lost as is_connection_lost
    from app.db_errors import is_database_unavailable as is_database_unavailable
    from app.db_errors import is_refused_value as is_refused_value
    from app.http_errors import CLI_PREFIX as CLI_PREFIX
    from app.http_errors import PROBLEM_JSON as PROBLEM_JSON
    from app.http_errors import REQUEST_ID_KEY as REQUEST_ID_KEY
    from app.http_errors import Problem as Problem
    from app.http_errors import allowed_methods as allowed_methods
    from app.http_errors import install_handlers as install_handlers
    from app.http_errors import is_cli_path as is_cli_path
    from app.http_errors import journal_error_body as journal_error_body
    from app.http_errors import problem_body as problem_body
    from app.http_errors import render as render
    from app.http_errors import request_id_of as request_id_of
    from app.models.constraints import UNIQUE_MESSAGES as UNIQUE_MESSAGES
    from app.schemas.journal import JOURNAL_API as JOURNAL_API


def __getattr__(name: str) -> Any:
    module = _MOVED_TO.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
