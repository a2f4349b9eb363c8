"""OpenAPI helpers: every status a route can return, declared with its error schema."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from app.errors import PROBLEM_JSON, Problem

# Every route that authenticates can answer these; every route that touches the database, 503.
AUTH = (401,)
DB = (503,)


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for error statuses, rendered as application/problem+json."""
    schema = {"$ref": "#/components/schemas/Problem"}
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "model": Problem,
            "content": {PROBLEM_JSON: {"schema": schema}},
        }
        for status in sorted(set(statuses))
    }
