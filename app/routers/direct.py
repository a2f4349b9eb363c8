"""Direct handlers: the busiest reads called without FastAPI's dependency solver, where it has nothing to do.

A read such as `GET /api/v1/plugins/{id}/` takes the request, a text path parameter and the principal
(`app.deps.get_principal`, a function of the request alone) and returns its `Response` itself. FastAPI's
solver still walks every parameter kind for it on each request (query, header and cookie mappings built,
each dependency's cache key and kind worked out again, an empty `Response` made for headers nobody sets):
about a third of a cached plugin read. None of that can change the outcome of such a route: a text path
parameter cannot fail validation, and a request-only dependency gets the request. So a route made only of
those (and query parameters, which FastAPI's own `request_params_to_args` validates, as its solver does)
gets a handler that calls them directly, in FastAPI's order (dependencies in declaration order, each once
per request, then the path and query parameters, a 422 for what the query got wrong); exceptions take the
same way to the same handlers. Any other route, or any request while `dependency_overrides` are set, is
solved by FastAPI as before.

A route may also take one JSON body (a single, not embedded `Body` parameter, such as a pydantic model):
its body is read and parsed first, as FastAPI reads it (the content type decides whether the bytes are
parsed; bad JSON is a `json_invalid` validation error, a failed read a 400), and validated after the
dependencies by FastAPI's own `request_body_to_args`, its errors joining the query's in one 422.
"""

from __future__ import annotations

import email.message
import inspect
import json
import typing
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response, params
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_body_to_args, request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic_core import PydanticUndefined
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
RequestDependency = Callable[[Request], Coroutine[Any, Any, Any]]


def _other_inputs(dependant: Dependant, *, body: bool = False) -> bool:
    """Whether `dependant` reads anything but the request, its path, its query, its dependencies (and, if
    `body`, its body)."""
    return bool(
        dependant.header_params
        or dependant.cookie_params
        or (dependant.body_params and not body)
        or dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
        or dependant.own_oauth_scopes
    )


def _request_only(dependant: Dependant) -> bool:
    """An `async def` dependency whose only parameter is the request (no sub-dependency, no `yield`)."""
    return (
        dependant.name is not None
        and dependant.request_param_name is not None
        and inspect.iscoroutinefunction(dependant.call)
        and not dependant.dependencies
        and not dependant.path_params
        and not dependant.query_params
        and not _other_inputs(dependant)
    )


def _returns_response(call: Callable[..., Any]) -> bool:
    try:
        returned = typing.get_type_hints(call).get("return")
    except (NameError, TypeError):
        return False
    return isinstance(returned, type) and issubclass(returned, Response)


def _json_body(route: APIRoute) -> bool:
    """Whether the route's body is one JSON value that is the route's one body parameter (not a form, not
    embedded in an object under its name): what `read_json_body` reads and `request_body_to_args` checks."""
    fields = route.dependant.body_params
    if route.body_field is None or len(fields) != 1:
        return False
    info = fields[0].field_info
    return isinstance(info, params.Body) and not isinstance(info, params.Form) and not info.embed


def _is_json_media_type(content_type: str) -> bool:
    """FastAPI's reading of a `Content-Type`: `application/json` or `application/<anything>+json`."""
    if content_type == "application/json":  # what nearly every client sends: no parsing needed
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def _content_type(request: Request) -> str | None:
    # ASGI servers give header names in lower case; the first one counts, as in `request.headers.get`.
    for name, value in request.scope["headers"]:
        if name == b"content-type":
            return str(value.decode("latin-1"))
    return None


async def read_json_body(request: Request, *, strict_content_type: bool) -> Any:
    """The body as FastAPI's request handler reads a JSON body: `PydanticUndefined` when empty, the parsed
    document when the content type says JSON (or is absent and not `strict_content_type`), the bytes
    otherwise (which the body's validation then refuses)."""
    try:
        body = await request.body()
        if not body:
            return PydanticUndefined
        content_type = _content_type(request)
        if (not content_type and not strict_content_type) or (content_type and _is_json_media_type(content_type)):
            return await request.json()
        return body
    except json.JSONDecodeError as exc:
        error = {"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error", "input": {}}
        raise RequestValidationError([{**error, "ctx": {"error": exc.msg}}], body=exc.doc) from exc
    except HTTPException:
        raise
    except Exception as exc:  # a client gone mid-body, say: FastAPI's answer
        raise HTTPException(status_code=400, detail="There was an error parsing the body") from exc


def direct_handler(route: APIRoute, solved: Handler) -> Handler | None:
    """`route`'s handler without the solver, or None when the route needs it. `solved` (FastAPI's own
    handler) still answers while `dependency_overrides` are set."""
    dependant = route.dependant
    endpoint = dependant.call
    has_body = _json_body(route)
    if (
        (route.body_field is not None and not has_body)
        or not inspect.iscoroutinefunction(endpoint)
        or not _returns_response(endpoint)
        or _other_inputs(dependant, body=has_body)
        or not all(_request_only(sub) for sub in dependant.dependencies)
        # Text without constraints: what the path gives is what the endpoint gets.
        or not all(f.field_info.annotation is str and not f.field_info.metadata for f in dependant.path_params)
    ):
        return None
    dependencies = [
        (str(sub.name), typing.cast(RequestDependency, sub.call), sub.use_cache) for sub in dependant.dependencies
    ]
    path_params = [(field.name, field.alias) for field in dependant.path_params]
    query_params = dependant.query_params
    request_name = dependant.request_param_name
    overrides = route.dependency_overrides_provider
    call_endpoint = typing.cast(Callable[..., Coroutine[Any, Any, Response]], endpoint)
    body_params = dependant.body_params if has_body else []
    strict = route.strict_content_type
    strict_content_type = bool(strict.value if isinstance(strict, DefaultPlaceholder) else strict)

    async def handle(request: Request) -> Response:
        if overrides is not None and getattr(overrides, "dependency_overrides", None):
            return await solved(request)
        if MAX_BODY_SIZE_SCOPE_KEY in request.scope:  # Starlette's body limit: FastAPI translates its errors
            return await solved(request)
        # FastAPI reads the body before it solves anything: a malformed body is refused before the key is.
        body = await read_json_body(request, strict_content_type=strict_content_type) if body_params else None
        values: dict[str, Any] = {}
        done: dict[RequestDependency, Any] = {}
        for name, call, use_cache in dependencies:
            if use_cache and call in done:
                values[name] = done[call]
            else:
                values[name] = done[call] = await call(request)
        path = request.path_params
        for name, alias in path_params:
            values[name] = path[alias]
        errors: list[Any] = []
        if query_params:  # validated by FastAPI's own functions: the same values, the same errors
            query, errors = request_params_to_args(query_params, request.query_params)
            values.update(query)
        if body_params:
            validated, body_errors = await request_body_to_args(body_params, body, embed_body_fields=False)
            values.update(validated)
            errors.extend(body_errors)
        if errors:
            raise RequestValidationError(errors, body=None if body is PydanticUndefined else body)
        if request_name is not None:
            values[request_name] = request
        response: Response = await call_endpoint(**values)
        return response

    return handle
