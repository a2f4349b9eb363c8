"""Pages over HTTP: the `limit`/`offset` query of a list route, and the `Link` header to the next page."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, Query, Request, Response

from app.schemas.base import LIMIT_DESCRIPTION, MAX_LIMIT, MAX_OFFSET, OFFSET_DESCRIPTION
from app.services.base import Page, PageRequest


async def page_params(
    limit: Annotated[int | None, Query(ge=1, le=MAX_LIMIT, description=LIMIT_DESCRIPTION)] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description=OFFSET_DESCRIPTION)] = 0,
) -> PageRequest:
    return PageRequest(limit=limit, offset=offset)


PageDep = Annotated[PageRequest, Depends(page_params)]


def link_next(request: Request, response: Response, page: Page | PageRequest, has_more: bool) -> None:
    """`Link: <url>; rel="next"` when another page exists (the body stays a bare JSON array).

    The request's URL with its other query parameters as they were and the next `limit`/`offset`.
    """
    if has_more and page.limit is not None:
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "limit" and k != "offset"]
        query += [("limit", str(page.limit)), ("offset", str(page.offset + page.limit))]
        response.headers["Link"] = f'<{request.url.replace(query=urlencode(query))}>; rel="next"'
