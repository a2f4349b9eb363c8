"""How every resource router is made."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.routing import APIRoute

from app import documents
from app.routers.direct import direct_handler


def operation_id(route: APIRoute) -> str:
    """`<tag>-<function>`: the operation ids of the OpenAPI document (and of Swagger UI's links)."""
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


class DocumentRequest(Request):
    """A request whose JSON body is parsed on a worker thread (a small one on the event loop), with
    `app.documents`' nesting limit.

    FastAPI parses a route's JSON body with `request.json()` on the event loop: a 1 MiB document costs
    tens of milliseconds there (more on a loaded machine), stalling every other request meanwhile.
    """

    async def json(self) -> Any:
        body = await self.body()
        try:
            if len(body) <= documents.INLINE_JSON_BYTES:
                return documents.load_json(body)
            return await anyio.to_thread.run_sync(documents.load_json, body)
        except documents.DocumentError as exc:
            raise HTTPException(422, detail=str(exc)) from None
        except json.JSONDecodeError:
            raise  # FastAPI's 422 `json_invalid`, rendered as a 400 (`app.errors`)
        except ValueError:  # bad encoding, an integer beyond Python's digit limit
            raise json.JSONDecodeError("not JSON", "", 0) from None


class DocumentRoute(APIRoute):
    """A route whose body, if it takes one, is read as a `DocumentRequest`; one whose parameters leave
    FastAPI's solver nothing to do is called directly (`app.routers.direct`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        solved = super().get_route_handler()
        return self._reading_documents(direct_handler(self, solved) or solved)

    def solved_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler as FastAPI's solver answers it, direct or not (what the direct one is
        compared with, `tests/routers/test_direct_routes.py`)."""
        return self._reading_documents(super().get_route_handler())

    def _reading_documents(
        self, handler: Callable[[Request], Coroutine[Any, Any, Response]]
    ) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        if self.body_field is None:
            return handler

        async def handle(request: Request) -> Response:
            return await handler(DocumentRequest(request.scope, request.receive))

        return handle


def resource_router(*, tag: str, prefix: str = "", route_class: type[APIRoute] = DocumentRoute) -> APIRouter:
    """A resource's router. Its routes are complete where they are declared (full path, tags, operation id):
    the app puts them on its own router rather than including the router (`app.main.create_app`)."""
    return APIRouter(prefix=prefix, tags=[tag], generate_unique_id_function=operation_id, route_class=route_class)
