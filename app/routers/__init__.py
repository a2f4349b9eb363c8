"""Every router of the app, in the order a request is matched against them (and their paths are listed in
the OpenAPI document; Swagger UI groups operations by the tags of `app.main.TAGS`, in that order).

FastAPI tries the included routers in turn, so every request pays for each router listed before its own
(16% of the CPU of a cached plugin read when plugins came seventh): the busiest routes come first, the
probes last. Users, profiles and contacts live under `/api/v1/accounts/`, so they are included before the
accounts router, whose `/{id}/` would otherwise capture `users`, `user-profiles` and `contacts`.
"""

from fastapi import APIRouter

from app.routers import accounts, api_keys, auth, cli, contacts, health, plugins, profiles, users

ROUTERS: list[APIRouter] = [
    plugins.router,
    cli.router,
    api_keys.router,
    users.router,
    profiles.router,
    contacts.router,
    accounts.router,
    auth.router,
    health.router,
]
