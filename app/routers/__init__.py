"""Every router of the app, in the order they appear in the OpenAPI document.

Users, profiles and contacts live under `/api/v1/accounts/`, so they are included before the
accounts router, whose `/{id}/` would otherwise capture `users`, `user-profiles` and `contacts`.
"""

from fastapi import APIRouter

from app.routers import accounts, api_keys, auth, cli, contacts, health, plugins, profiles, users

ROUTERS: list[APIRouter] = [
    health.router,
    auth.router,
    users.router,
    profiles.router,
    contacts.router,
    accounts.router,
    plugins.router,
    api_keys.router,
    cli.router,
]
