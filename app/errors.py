"""Domain errors with HTTP statuses, and the handlers that render every error as problem+json.

Routes under `/api/v1/cli/` get the Smarter journal envelope instead (the CLI/SDK protocol). No handler
ever includes a stack trace, a request body or a submitted value in what it sends.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from http import HTTPStatus
from typing import Any, ClassVar

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import Index, UniqueConstraint
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app import metrics
from app.text import to_camel_case

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
CLI_PREFIX = "/api/v1/cli"
JOURNAL_API = "smarter.sh/v1"


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where the error is, e.g. ['body', 'name'].")
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(examples=["urn:smarter-core:problem:not-found"])
    title: str = Field(examples=["Not Found"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=["No plugin with this id is visible to you."])
    errors: list[FieldError] | None = Field(default=None, description="The invalid fields (422, 409).")
    request_id: str | None = Field(
        default=None,
        alias="requestId",
        examples=["4bf92f3577b34da6a3ce929d0e0e4736"],
        description="The request's id, as in its `X-Request-ID` header and the access log.",
    )


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


def problem_body(
    status: int, detail: str, *, slug: str, errors: list[FieldError] | None = None, request_id: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"urn:smarter-core:problem:{slug}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = [e.model_dump() for e in errors]
    if request_id is not None:
        body["requestId"] = request_id
    return body


# Where `app.observe` keeps the request's id in the ASGI scope (it imports this module, not the reverse).
REQUEST_ID_KEY = "smarter_core.request_id"


def request_id_of(request: Request) -> str | None:
    value = request.scope.get(REQUEST_ID_KEY)
    return value if isinstance(value, str) else None


def journal_context(request: Request) -> tuple[str, str]:
    """(command, thing) of a CLI request; routes refine `thing` on `request.state` once the kind is known."""
    command = getattr(request.state, "journal_command", None)
    thing = getattr(request.state, "journal_thing", None)
    if command is None:
        parts = request.url.path[len(CLI_PREFIX) :].strip("/").split("/")
        # Journal commands are snake_case (`example_manifest`), paths kebab-case (`example-manifest/`).
        command = parts[0].replace("-", "_") or "None"
    return command, thing or "None"


def journal_error_body(request: Request, error: AppError) -> dict[str, Any]:
    command, thing = journal_context(request)
    return {
        "api": JOURNAL_API,
        "metadata": {"command": command, "thing": thing},
        "error": {
            "errorClass": type(error).__name__,
            "description": error.detail,
            "status": error.status,
            "errors": [e.model_dump() for e in error.errors] if error.errors else None,
            "requestId": request_id_of(request),
        },
    }


def is_cli_path(path: str) -> bool:
    return path == CLI_PREFIX or path.startswith(CLI_PREFIX + "/")


def render(request: Request, error: AppError) -> JSONResponse:
    if is_cli_path(request.url.path):
        return JSONResponse(journal_error_body(request, error), status_code=error.status, headers=error.headers)
    body = problem_body(
        error.status, error.detail, slug=error.slug, errors=error.errors, request_id=request_id_of(request)
    )
    return JSONResponse(body, status_code=error.status, headers=error.headers, media_type=PROBLEM_JSON)


# --- integrity errors --------------------------------------------------------------------------------

_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)")
_SQLITE_CHECK = re.compile(r"CHECK constraint failed: (\w+)")

# Sentences for the unique constraints users can hit; others get a generic sentence naming the field.
UNIQUE_MESSAGES: dict[str, tuple[str, str]] = {
    "uq_account_name": ("name", "An account with this name already exists."),
    "uq_account_account_number": ("accountNumber", "An account with this account number already exists."),
    "uq_account_single_default": ("isDefaultAccount", "There is already a default account."),
    "uq_account_contact_account_id_email": ("email", "This account already has a contact with this email."),
    "uq_account_contact_single_primary": ("isPrimary", "This account already has a primary contact."),
    "uq_app_user_username": ("username", "A user with this username already exists."),
    "uq_user_profile_user_id_account_id": ("username", "This user already has a profile in this account."),
    "uq_plugin_meta_account_id_name": ("name", "A plugin with this name already exists in this account."),
    "uq_api_key_user_profile_id_name": ("name", "An API key with this name already exists for this owner."),
    "uq_secret_account_id_name": ("name", "A secret with this name already exists in this account."),
}


@lru_cache(maxsize=1)
def _unique_index() -> dict[tuple[str, tuple[str, ...]], str]:
    """(table, columns) -> constraint name, to read SQLite's messages, which list columns, not names."""
    from app.models import Base

    found: dict[tuple[str, tuple[str, ...]], str] = {}
    for table in Base.metadata.tables.values():
        for item in [*table.constraints, *table.indexes]:
            if isinstance(item, UniqueConstraint) or (isinstance(item, Index) and item.unique):
                columns = tuple(c.name for c in item.columns)
                found[(table.name, columns)] = str(item.name)
    return found


def _constraint_of(exc: IntegrityError) -> tuple[str, str | None]:
    """('unique'|'foreign_key'|'check'|'not_null'|'other', constraint name) for both drivers."""
    orig = exc.orig
    cause = getattr(orig, "__cause__", None)
    sqlstate = getattr(cause, "sqlstate", None) or getattr(orig, "sqlstate", None)
    if sqlstate:
        name = getattr(cause, "constraint_name", None)
        kind = {"23505": "unique", "23503": "foreign_key", "23514": "check", "23502": "not_null"}.get(sqlstate, "other")
        return kind, name
    message = str(orig)
    if match := _SQLITE_UNIQUE.search(message):
        pairs = [part.strip().split(".", 1) for part in match.group(1).split(",")]
        table = pairs[0][0]
        columns = tuple(p[1] for p in pairs if len(p) == 2)
        return "unique", _unique_index().get((table, columns))
    if match := _SQLITE_CHECK.search(message):
        return "check", match.group(1)
    if "FOREIGN KEY constraint failed" in message:
        return "foreign_key", None
    if "NOT NULL constraint failed" in message:
        return "not_null", None
    return "other", None


def classify_integrity_error(exc: IntegrityError) -> AppError:
    kind, name = _constraint_of(exc)
    if kind == "unique":
        field, sentence = UNIQUE_MESSAGES.get(name or "", ("", "This conflicts with an existing record."))
        if not field and name:
            # The constraint's last column (`uq_api_key_key_id` -> keyId), not the name's last word (`id`).
            columns = next((cols for (_, cols), known in _unique_index().items() if known == name), ())
            field = to_camel_case(columns[-1]) if columns else ""
        errors = [FieldError(loc=["body", field], msg=sentence, type="unique")] if field else None
        return Conflict(sentence, errors=errors)
    if kind == "foreign_key":
        return Unprocessable("A record this refers to does not exist (or was just deleted).")
    if kind == "check":
        return Unprocessable(f"A value is outside its allowed range ({name or 'check constraint'}).")
    if kind == "not_null":
        return Unprocessable("A required value is missing.")
    return Conflict("This conflicts with the current state of the data.")


# --- database availability ----------------------------------------------------------------------------


# SQLSTATE classes that mean "not now": 08 connection exception, 40 transaction rollback (deadlock,
# serialization failure: a concurrent writer won), 53 insufficient resources (too many connections),
# 57 operator intervention (shutdown, starting up, statement timeout).
_RETRYABLE_CLASSES = frozenset({"08", "40", "53", "57"})


def is_database_unavailable(exc: BaseException) -> bool:
    """Connection loss, pool exhaustion, timeouts and locks: the client may retry; never a 500.

    Errors come wrapped by SQLAlchemy, or as asyncpg raised them (the hot reads of `app.reads`, a pool
    checkout that failed to connect): the SQLSTATE decides for both.
    """
    if isinstance(exc, PoolTimeoutError | InterfaceError | OperationalError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if _driver_refused_argument(exc):
        return False  # the client's value (`is_refused_value`)
    if isinstance(exc, asyncpg.InterfaceError) or is_connection_lost(exc):
        return True  # the driver's "connection is closed", or the session gone under a statement
    if _sqlstate(exc)[:2] in _RETRYABLE_CLASSES:
        return True
    return isinstance(exc, OSError | TimeoutError | ConnectionError)


# The server has closed, or is closing, the session: admin shutdown, crash shutdown, cannot connect now.
_SHUTDOWN_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


def is_connection_lost(exc: BaseException) -> bool:
    """asyncpg's session is gone, and with it, likely, every connection to the same server."""
    if isinstance(exc, asyncpg.PostgresConnectionError | OSError):
        return True  # class 08 (connection exception) included: "closed in the middle of operation"
    if isinstance(exc, asyncpg.InternalClientError):
        # The protocol is in a state no statement of ours left it in ("cannot switch to state ..."): the
        # server's FATAL arrived while the connection sat idle (a terminated backend), and the close that
        # follows is not yet seen.
        return True
    return getattr(exc, "sqlstate", None) in _SHUTDOWN_SQLSTATES


def _sqlstate(exc: BaseException) -> str:
    """The driver's SQLSTATE, wherever it is (on asyncpg's error; SQLAlchemy's wraps it twice), or ''."""
    for candidate in (exc, getattr(exc, "orig", None), exc.__cause__):
        for error in (candidate, getattr(candidate, "__cause__", None)):
            sqlstate = getattr(error, "sqlstate", None)
            if isinstance(sqlstate, str):
                return sqlstate
    return ""


def is_refused_value(exc: BaseException) -> bool:
    """SQLSTATE class 22 (data exception): PostgreSQL refuses NUL in text and JSONB, out-of-range numbers...

    asyncpg reports most of these as a generic DBAPIError, so the SQLSTATE decides, not the class.
    """
    return isinstance(exc, DataError) or _driver_refused_argument(exc) or _sqlstate(exc).startswith("22")


def _driver_refused_argument(exc: BaseException) -> bool:
    """asyncpg could not encode an argument (out of range for its type, say): its client-side DataError,
    which is both an InterfaceError and a ValueError (`asyncpg.DataError` is the server's class 22)."""
    return isinstance(exc, asyncpg.InterfaceError) and isinstance(exc, ValueError)


# --- handlers -----------------------------------------------------------------------------------------


def field_errors(items: Iterable[Mapping[str, Any]], *, prefix: Sequence[str | int] = ()) -> list[FieldError]:
    """Pydantic error items as FieldErrors (`prefix` + loc, msg, type), dropping `input` and `ctx`."""
    errors: list[FieldError] = []
    for item in items:
        # Never echo `input`: it may be a password or a key.
        loc = [*prefix, *(p if isinstance(p, int) else str(p) for p in item.get("loc", ()))]
        errors.append(FieldError(loc=loc, msg=str(item.get("msg", "Invalid value.")), type=str(item.get("type"))))
    return errors


def _validation_errors(exc: RequestValidationError) -> list[FieldError]:
    return field_errors(exc.errors())


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return render(request, exc)


async def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _validation_errors(exc)
    if any(e.type == "json_invalid" for e in errors):
        return render(request, BadRequest("The request body is not valid JSON."))
    fields = ", ".join(".".join(str(p) for p in e.loc[1:]) or str(e.loc[0]) for e in errors[:5] if e.loc)
    return render(request, Unprocessable(f"Invalid request: {fields or 'see errors'}.", errors=errors))


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    mapping: dict[int, type[AppError]] = {
        400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 405: MethodNotAllowed,
        409: Conflict, 413: PayloadTooLarge, 422: Unprocessable, 503: ServiceUnavailable,
    }  # fmt: skip
    error_type = mapping.get(exc.status_code)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and detail == "Not Found":
        detail = "There is nothing at this path."
    if error_type is None:
        error = AppError(detail)
        response = render(request, error)
        response.status_code = exc.status_code
        return response
    error = error_type(detail) if error_type is not Unauthorized else Unauthorized(detail)
    error.headers.update(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names the methods of the first route whose path matched; the path may have others.
        error.headers["Allow"] = allowed_methods(request)
    return render(request, error)


_METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> str:
    """Every method of every route whose path matches this request's (RFC 9110: `Allow` on a 405)."""
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    order = {method: index for index, method in enumerate(_METHOD_ORDER)}
    return ", ".join(sorted(methods, key=lambda method: (order.get(method, len(order)), method)))


async def _integrity(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IntegrityError)
    return render(request, classify_integrity_error(exc))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    if is_database_unavailable(exc):
        if isinstance(exc, PoolTimeoutError):
            metrics.count_pool_timeout()
        logger.warning("Database unavailable: %s", type(exc).__name__)
        return render(request, ServiceUnavailable("The database is unavailable; try again shortly."))
    if is_refused_value(exc):
        # The client's input (the value itself is not logged), so a 422, never a 500.
        logger.warning("Database refused a value on %s %s", request.method, request.url.path)
        return render(
            request, Unprocessable("A value cannot be stored: it is out of range or contains a character such as NUL.")
        )
    logger.error("Unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path, exc_info=exc)
    return render(request, AppError("The server could not complete this request."))


async def _server_error(request: Request, exc: Exception) -> JSONResponse:
    """The handler of `Exception`: Starlette runs it outside every middleware, so it adds the request id
    header itself (`app.observe` adds it to the responses that pass through it)."""
    response = await _unexpected(request, exc)
    if (request_id := request_id_of(request)) is not None:
        response.headers["X-Request-ID"] = request_id
    return response


# Errors the app answers itself, by class. Starlette runs the handler of `Exception` in its outermost
# middleware, which re-raises after answering: the server then logs a traceback and closes the client's
# connection. So every error that is an outcome rather than a bug (the database or its driver failing,
# as SQLAlchemy wraps it or as asyncpg raises it in `app.reads`) is named here, answered and done.
_ANSWERED_ERRORS: tuple[type[Exception], ...] = (
    DBAPIError,
    PoolTimeoutError,
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(IntegrityError, _integrity)
    for error in _ANSWERED_ERRORS:
        app.add_exception_handler(error, _unexpected)
    app.add_exception_handler(Exception, _server_error)  # a bug: a logged 500
