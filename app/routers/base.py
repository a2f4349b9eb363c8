"""How every resource router is made."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.routing import APIRoute


def operation_id(route: APIRoute) -> str:
    """`<tag>-<function>`: the operation ids of the OpenAPI document (and of Swagger UI's links)."""
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def resource_router(*, tag: str, prefix: str = "") -> APIRouter:
    """A resource's router. Its routes are complete where they are declared (full path, tags, operation id):
    the app puts them on its own router rather than including the router (`app.main.create_app`)."""
    return APIRouter(prefix=prefix, tags=[tag], generate_unique_id_function=operation_id)
