"""Every router of the app, in the order a request is matched against them (and their paths are listed in
the OpenAPI document; Swagger UI groups operations by the tags of `app.main.TAGS`, in that order).

The app matches a request against its routes in turn (`app.main.create_app` puts every router's routes on
the app's own router), so a request pays a little for each route listed before its own: the busiest routes
come first (the plugin detail first of all, `app.routers.plugins`), then the two probes (an orchestrator
calls them every few seconds, and they cost every later route two cheap checks); `routes` moves the plugin
runtime's selection and tool call up to follow the plugin detail and list. Users, profiles and
contacts live under `/api/v1/accounts/`, so they come before the accounts router, whose `/{id}/` would
otherwise capture `users`, `user-profiles` and `contacts`.
"""

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from app.routers import (
    accounts,
    api_keys,
    auth,
    cli,
    connections,
    contacts,
    health,
    plugin_runtime,
    plugins,
    profiles,
    secrets,
    users,
)

ROUTERS: list[APIRouter] = [
    plugins.router,
    plugin_runtime.router,
    health.router,
    cli.router,
    api_keys.router,
    secrets.router,
    connections.sql_router,
    connections.api_router,
    users.router,
    profiles.router,
    contacts.router,
    accounts.router,
    auth.router,
]


def _runs_every_turn(route: BaseRoute) -> bool:
    return isinstance(route, APIRoute) and route.endpoint in plugin_runtime.EVERY_TURN


def _plugin_list(route: BaseRoute) -> bool:
    return isinstance(route, APIRoute) and route.path == "/api/v1/plugins/" and "GET" in (route.methods or ())


def routes() -> list[BaseRoute]:
    """Every router's routes in `ROUTERS` order, but for the plugin runtime's selection and tool call: an LLM
    application sends them on every turn, so they follow the plugin list (each route ahead of a request's
    own costs it a failed match; these two had fourteen ahead of them, the routes they now pass three)."""
    ordered = [route for router in ROUTERS for route in router.routes if not _runs_every_turn(route)]
    after = next(index for index, route in enumerate(ordered) if _plugin_list(route)) + 1
    every_turn = [route for route in plugin_runtime.router.routes if _runs_every_turn(route)]
    return [*ordered[:after], *every_turn, *ordered[after:]]
