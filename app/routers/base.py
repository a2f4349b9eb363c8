"""The router class of every resource router."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.routing import Match
from starlette.types import Scope


class PrefixRouter(APIRouter):
    """An `APIRouter` that answers "no match" at once for a path outside its prefix.

    FastAPI matches an included router by trying each of its routes in turn, twice per request (once to
    pick the router, once to pick the route), so every request paid for every route of every router
    listed before its own: a quarter of the CPU of a cheap request (`make bench`, scenario f). All the
    routes of a router start with its prefix, so a path without it cannot match any of them.
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        # `path` includes the root path an ASGI server mounts the app under; routes are matched without it.
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        if not path.startswith(self.prefix):
            return Match.NONE, {}
        return super().matches(scope)
