"""Every router of the app, in the order a request is matched against them (and their paths are listed in
the OpenAPI document; Swagger UI groups operations by the tags of `app.main.TAGS`, in that order).

The app matches a request against its routes in turn (`app.main.create_app` puts every router's routes on
the app's own router), so a request pays a little for each route listed before its own: the busiest routes
come first (the plugin detail first of all, `app.routers.plugins`), then the two probes (an orchestrator
calls them every few seconds, and they cost every later route two cheap checks). Users, profiles and
contacts live under `/api/v1/accounts/`, so they come before the accounts router, whose `/{id}/` would
otherwise capture `users`, `user-profiles` and `contacts`.
"""

from fastapi import APIRouter

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
