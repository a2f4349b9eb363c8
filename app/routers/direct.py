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
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
RequestDependency = Callable[[Request], Coroutine[Any, Any, Any]]


def _other_inputs(dependant: Dependant) -> bool:
    """Whether `dependant` reads anything but the request, its path, its query and its dependencies."""
    return bool(
        dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
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


def direct_handler(route: APIRoute, solved: Handler) -> Handler | None:
    """`route`'s handler without the solver, or None when the route needs it. `solved` (FastAPI's own
    handler) still answers while `dependency_overrides` are set."""
    dependant = route.dependant
    endpoint = dependant.call
    if (
        route.body_field is not None
        or not inspect.iscoroutinefunction(endpoint)
        or not _returns_response(endpoint)
        or _other_inputs(dependant)
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

    async def handle(request: Request) -> Response:
        if overrides is not None and getattr(overrides, "dependency_overrides", None):
            return await solved(request)
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
        if query_params:  # validated by FastAPI's own function: the same values, the same errors
            query, errors = request_params_to_args(query_params, request.query_params)
            if errors:
                raise RequestValidationError(errors)
            values.update(query)
        if request_name is not None:
            values[request_name] = request
        response: Response = await call_endpoint(**values)
        return response

    return handle
