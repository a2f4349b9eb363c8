"""How an error is answered over HTTP: problem+json (RFC 9457), or the Smarter journal envelope on the
manifest API, and the handlers that turn every exception into one of them.

The journal envelope is chosen by the manifest API's route class (`app.routers.cli.JournalRoute`), which
leaves a `JournalContext` in the request's scope before anything of the route runs. A request no route
took (an unknown path, a refusal of `app.middleware`) has no route to choose: under `/api/v1/cli/` it gets
the journal envelope too, its command read from the path. No handler ever includes a stack trace, a request
body or a submitted value in what it sends.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app import metrics
from app.db_errors import DATABASE_ERRORS, classify_integrity_error, is_database_unavailable, is_refused_value
from app.errors import (
    BY_STATUS,
    AppError,
    BadRequest,
    FieldError,
    ServiceUnavailable,
    Unprocessable,
    field_errors,
)
from app.schemas.journal import JOURNAL_API

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
CLI_PREFIX = "/api/v1/cli"


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


# --- the journal envelope ------------------------------------------------------------------------------

# Where the manifest API's route class leaves the request's `JournalContext`.
JOURNAL_KEY = "smarter_core.journal"


@dataclass
class JournalContext:
    """The `metadata` of a manifest API response: the command, and the kind once it is known."""

    command: str
    thing: str = "None"


def command_of(path: str) -> str:
    """The journal command a manifest API path names: `/api/v1/cli/example-manifest/...` -> example_manifest."""
    parts = path[len(CLI_PREFIX) :].strip("/").split("/")
    # Journal commands are snake_case (`example_manifest`), paths kebab-case (`example-manifest/`).
    return parts[0].replace("-", "_") or "None"


def is_cli_path(path: str) -> bool:
    return path == CLI_PREFIX or path.startswith(CLI_PREFIX + "/")


def journal_of(request: Request) -> JournalContext | None:
    """The journal context its route left, or, for a request no route took, the one its path names."""
    context = request.scope.get(JOURNAL_KEY)
    if isinstance(context, JournalContext):
        return context
    # The scope's path decides (the URL's differs only in escaped `?`, `#` and `\`): building `request.url`
    # would cost every REST error, such as the guard's 401, a sixth of its CPU.
    if is_cli_path(request.scope["path"]):
        return JournalContext(command_of(request.url.path))
    return None


def name_thing(request: Request, thing: str) -> None:
    """The manifest's kind, once a route has read it from the body: errors from here on name it."""
    context = request.scope.get(JOURNAL_KEY)
    if isinstance(context, JournalContext):
        context.thing = thing


def journal_error_body(
    context: JournalContext, error: AppError, *, request_id: str | None, status: int | None = None
) -> dict[str, Any]:
    return {
        "api": JOURNAL_API,
        "metadata": {"command": context.command, "thing": context.thing},
        "error": {
            "errorClass": type(error).__name__,
            "description": error.detail,
            "status": error.status if status is None else status,
            "errors": [e.model_dump() for e in error.errors] if error.errors else None,
            "requestId": request_id,
        },
    }


def render(request: Request, error: AppError) -> JSONResponse:
    if (context := journal_of(request)) is not None:
        body = journal_error_body(context, error, request_id=request_id_of(request))
        return JSONResponse(body, status_code=error.status, headers=error.headers)
    body = problem_body(
        error.status, error.detail, slug=error.slug, errors=error.errors, request_id=request_id_of(request)
    )
    return JSONResponse(body, status_code=error.status, headers=error.headers, media_type=PROBLEM_JSON)


# --- handlers -----------------------------------------------------------------------------------------


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return render(request, exc)


async def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = field_errors(exc.errors())
    if any(e.type == "json_invalid" for e in errors):
        return render(request, BadRequest("The request body is not valid JSON."))
    fields = ", ".join(".".join(str(p) for p in e.loc[1:]) or str(e.loc[0]) for e in errors[:5] if e.loc)
    return render(request, Unprocessable(f"Invalid request: {fields or 'see errors'}.", errors=errors))


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    error_type = BY_STATUS.get(exc.status_code)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and detail == "Not Found":
        detail = "There is nothing at this path."
    if error_type is None:
        error = AppError(detail)
        response = render(request, error)
        response.status_code = exc.status_code
        return response
    error = error_type(detail)
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


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(IntegrityError, _integrity)
    # Starlette runs the handler of `Exception` in its outermost middleware, which re-raises after
    # answering: the server then logs a traceback and closes the client's connection. So every error that
    # is an outcome rather than a bug is named here, answered and done.
    for error in DATABASE_ERRORS:
        app.add_exception_handler(error, _unexpected)
    app.add_exception_handler(Exception, _server_error)  # a bug: a logged 500
