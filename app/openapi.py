"""OpenAPI helpers: every status a route can return, declared with its error schema."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from app.errors import (
    AppError,
    BadRequest,
    Conflict,
    FieldError,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthorized,
    Unprocessable,
)
from app.http_errors import PROBLEM_JSON, JournalContext, Problem, is_cli_path, journal_error_body, problem_body
from app.schemas.journal import JournalErrorResponse

# Every route that authenticates can answer these; every route that touches the database, 503.
AUTH = (401,)
DB = (503,)


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for error statuses, rendered as application/problem+json."""
    schema = {"$ref": "#/components/schemas/Problem"}
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "model": Problem,
            "content": {PROBLEM_JSON: {"schema": schema}},
        }
        for status in sorted(set(statuses))
    }


# Each error status's own example, as the handlers of `app.http_errors` render it.
_EXAMPLE_ERRORS: dict[int, AppError] = {
    error.status: error
    for error in (
        BadRequest("The request body is not valid JSON."),
        Unauthorized("Invalid token."),
        Forbidden("You do not have permission to perform this action."),
        NotFound("Nothing with this id is visible to you."),
        MethodNotAllowed("Method Not Allowed"),
        Conflict(
            "A plugin with this name already exists in this account.",
            errors=[FieldError(loc=["body", "name"], msg="A plugin with this name already exists.", type="unique")],
        ),
        PayloadTooLarge("Request bodies are limited to 1024 KiB."),
        Unprocessable(
            "Invalid request: name.", errors=[FieldError(loc=["body", "name"], msg="Field required", type="missing")]
        ),
        ServiceUnavailable("The database is unavailable; try again shortly."),
        AppError("The server could not complete this request."),
    )
}
_EXAMPLE_REQUEST_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def error_example(status: int, *, journal: bool) -> dict[str, Any]:
    error = _EXAMPLE_ERRORS.get(status) or AppError(HTTPStatus(status).phrase)
    if journal:
        context = JournalContext("apply", "Plugin")
        return journal_error_body(context, error, request_id=_EXAMPLE_REQUEST_ID, status=status)
    return problem_body(status, error.detail, slug=error.slug, errors=error.errors, request_id=_EXAMPLE_REQUEST_ID)


# The description FastAPI gives the 422 it adds itself.
FASTAPI_422_DESCRIPTION = "Validation Error"
_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


# --- the whole document -------------------------------------------------------------------------------


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


# Bodies a route reads itself (its `openapi_extra` names their schemas, e.g. a `oneOf` chosen by the resource's
# class): their models go in `components.schemas`, as FastAPI does for the bodies it validates.
_REQUEST_MODELS: list[type[BaseModel]] = []


def register_request_models(*models: type[BaseModel]) -> None:
    _REQUEST_MODELS.extend(model for model in models if model not in _REQUEST_MODELS)


def _add_request_models(document: dict[str, Any]) -> None:
    if not _REQUEST_MODELS:
        return
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    _, definitions = models_json_schema(
        [(model, "validation") for model in _REQUEST_MODELS], ref_template="#/components/schemas/{model}"
    )
    for name, schema in definitions.get("$defs", {}).items():
        schemas.setdefault(name, schema)


def _add_components(document: dict[str, Any], *models: type[BaseModel]) -> None:
    """Put `models` (and the models they use) in `components.schemas` if FastAPI has not already."""
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    if all(model.__name__ in schemas for model in models):
        return
    _, definitions = models_json_schema(
        [(model, "serialization") for model in models], ref_template="#/components/schemas/{model}"
    )
    for name, schema in definitions.get("$defs", {}).items():
        schemas.setdefault(name, schema)


def complete_error_responses(document: dict[str, Any], *, guarded_methods: Iterable[str]) -> dict[str, Any]:
    """Make every operation's error responses say what the handlers in `app.http_errors` actually send.

    - Every 4xx/5xx is `application/problem+json` with the `Problem` schema (REST routes) or `application/json`
      with the journal error envelope (`/api/v1/cli/`), and nothing else: `responses=` with a `model` also adds
      an `application/json` entry, and FastAPI adds a 422 `HTTPValidationError` (a shape this service never
      sends) to any route with parameters that does not declare its 422.
    - Every operation whose method `RequestGuard` limits declares 413: the guard answers it before routing,
      so any such request can get it, whether or not the route reads a body.
    """
    guarded = {method.lower() for method in guarded_methods}
    _add_components(document, Problem, JournalErrorResponse)
    problem = {PROBLEM_JSON: {"schema": _ref(Problem)}}
    journal = {"application/json": {"schema": _ref(JournalErrorResponse)}}
    for path, item in document.get("paths", {}).items():
        error_content = journal if is_cli_path(path) else problem
        for method, operation in item.items():
            if method not in _HTTP_METHODS:  # a path item's `parameters`, `summary`...
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            if method in guarded:
                responses.setdefault("413", {})
            for status, response in responses.items():
                if status.isdigit() and int(status) >= 400:
                    if response.get("description") in (None, "", FASTAPI_422_DESCRIPTION):
                        response["description"] = HTTPStatus(int(status)).phrase
                    response["content"] = copy.deepcopy(error_content)
                    for media in response["content"].values():
                        media["example"] = error_example(int(status), journal=is_cli_path(path))
            operation["responses"] = dict(sorted(responses.items()))
            _request_example(document, operation)
    # FastAPI's validation error schemas, now referenced by no operation.
    schemas = document.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        if f"#/components/schemas/{name}" not in json.dumps(document):
            schemas.pop(name, None)
    return document


def _request_example(document: dict[str, Any], operation: dict[str, Any]) -> None:
    """The body's model's first example as the JSON body's `example`: what Swagger UI puts in the editor
    (rather than a sample it would make up from the fields, `"string"` for every text)."""
    media = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if media is None or "example" in media:
        return
    reference = media.get("schema", {}).get("$ref", "")
    schema = document.get("components", {}).get("schemas", {}).get(reference.rsplit("/", 1)[-1], {})
    if schema.get("examples"):
        media["example"] = schema["examples"][0]


def _depends_on(dependant: Dependant, call: Callable[..., Any]) -> bool:
    return any(sub.call is call or _depends_on(sub, call) for sub in dependant.dependencies)


def declare_security(
    document: dict[str, Any], app: FastAPI, *, authenticates: Callable[..., Any], name: str, scheme: dict[str, Any]
) -> dict[str, Any]:
    """Declare security scheme `name` on every operation whose route depends on `authenticates`.

    What FastAPI does for a `Security(...)` parameter, for a dependency that reads its header itself.
    """
    document.setdefault("components", {}).setdefault("securitySchemes", {})[name] = scheme
    paths = document.get("paths", {})
    for context in iter_route_contexts(app.routes):  # included routers resolved to their full paths
        route = context.original_route
        if not isinstance(route, APIRoute) or not _depends_on(route.dependant, authenticates):
            continue
        for method in context.methods or ():
            operation = paths.get(context.path_format, {}).get(method.lower())
            if operation is not None and {name: []} not in operation.setdefault("security", []):
                operation["security"].append({name: []})
    return document


def install(
    app: FastAPI,
    *,
    guarded_methods: Iterable[str],
    authenticates: Callable[..., Any],
    security_scheme: tuple[str, dict[str, Any]],
) -> None:
    """Serve the document with `complete_error_responses` and `declare_security` applied (once, then cached
    like FastAPI's own)."""
    generate = app.openapi
    name, scheme = security_scheme

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            generated = generate()
            _add_request_models(generated)
            document = complete_error_responses(generated, guarded_methods=guarded_methods)
            # By path, whatever order the routes are matched in (the busiest first, `app.routers`): Swagger UI
            # then shows each tag's collection before its items.
            document["paths"] = dict(sorted(document.get("paths", {}).items()))
            app.openapi_schema = declare_security(document, app, authenticates=authenticates, name=name, scheme=scheme)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
