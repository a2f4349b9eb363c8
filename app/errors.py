"""The domain's errors: what went wrong, with the HTTP status it means. Services raise them; how they are
answered over HTTP is `app.http_errors`, what a database error means is `app.db_errors`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

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


# The error each status means where only a status is known (an HTTP exception of Starlette or FastAPI).
BY_STATUS: dict[int, type[AppError]] = {
    error.status: error
    for error in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        PayloadTooLarge,
        Unprocessable,
        ServiceUnavailable,
    )
}
