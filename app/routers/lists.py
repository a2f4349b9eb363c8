"""Collections: a page when `limit` is sent, every row in scope otherwise (streamed as one JSON array).

The SDK's `list()` means "every resource of this kind I may read" and cannot page, so a list without
`limit` is complete: its rows are read in batches, newest first, by key (`Page.before`), and sent as
each batch is serialised. The first batch is read before the response starts, on the request's session,
so a bad filter is still a 4xx; the others on a session of their own, which the stream closes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession

from app.deps import runtime_of
from app.openapi import problems
from app.routers.pages import link_next
from app.services.base import Page, PageRequest

JSON = "application/json"
# Rows per read of a complete list: large enough that the per-query cost fades, small enough that a
# batch's objects and bytes stay small.
BATCH = 500

Fetch = Callable[[AsyncSession, Page], Awaitable[tuple[Sequence[Any], bool]]]

_LINK = {
    "Link": {
        "description": (
            'With `limit`: `<url>; rel="next"` while more rows exist (the next page\'s URL). '
            "Without `limit` the list is complete and has no Link."
        ),
        "schema": {"type": "string"},
        "example": '<https://example.com/api/v1/plugins/?limit=100&offset=100>; rel="next"',
    }
}


def list_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` of a list route: its error statuses and the `Link` header of its 200."""
    return {200: {"description": "Successful Response", "headers": _LINK}, **problems(*statuses)}


async def json_array(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """`[`, the chunks (each some comma-separated elements, or nothing) separated by commas, `]`."""
    yield b"["
    separator = b""
    async for chunk in chunks:
        if chunk:
            yield separator + chunk
            separator = b","
    yield b"]"


def streamed(chunks: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(json_array(chunks), media_type=JSON)


_ADAPTERS: dict[type[Any], TypeAdapter[list[Any]]] = {}


def _adapter(model: type[Any]) -> TypeAdapter[list[Any]]:
    adapter = _ADAPTERS.get(model)
    if adapter is None:
        adapter = _ADAPTERS[model] = TypeAdapter(list[model])  # type: ignore[valid-type]
    return adapter


def _elements(adapter: TypeAdapter[list[Any]], rows: Sequence[Any]) -> bytes:
    """The rows as JSON array elements, without the brackets."""
    return adapter.dump_json(adapter.validate_python(rows, from_attributes=True), by_alias=True)[1:-1]


async def list_response(
    request: Request, session: AsyncSession, query: PageRequest, fetch: Fetch, model: type[Any]
) -> Response:
    """The page `query` asks for (with its `Link`), or the complete list, rows serialised as `model`."""
    adapter = _adapter(model)
    if query.limit is not None:
        page = Page(limit=query.limit, offset=query.offset)
        rows, more = await fetch(session, page)
        response = Response(b"[" + _elements(adapter, rows) + b"]", media_type=JSON)
        link_next(request, response, page, more)
        return response
    rows, more = await fetch(session, Page(limit=BATCH, offset=query.offset))
    first = _elements(adapter, rows)
    before = rows[-1].id if rows else None
    sessionmaker = runtime_of(request).sessionmaker

    async def chunks() -> AsyncIterator[bytes]:
        yield first
        if not more or before is None:
            return
        async with sessionmaker() as own:
            cursor, remaining = before, True
            while remaining:
                batch, remaining = await fetch(own, Page(limit=BATCH, before=cursor))
                if not batch:
                    return
                yield _elements(adapter, batch)
                cursor = batch[-1].id

    return streamed(chunks())
