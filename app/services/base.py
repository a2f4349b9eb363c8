"""Helpers shared by every service: lookups by path id, pages, insert-or-ignore, flush with 409s."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app import text
from app.db import dialect_of
from app.db_errors import classify_integrity_error
from app.errors import NotFound, Unprocessable
from app.identifiers import parse_path_id
from app.models import Base
from app.schemas.base import DEFAULT_LIMIT
from app.schemas.manifests.base import SAMMetadata

T = TypeVar("T")
S = TypeVar("S", bound=Select[Any])


@dataclass(frozen=True, slots=True)
class Page:
    """Rows of a list, newest (highest id) first: `limit` of them after skipping `offset`, and only ids
    below `before` when it is set (how a complete list reads its batches: by key, not by offset)."""

    limit: int = DEFAULT_LIMIT
    offset: int = 0
    before: int | None = None


@dataclass(frozen=True, slots=True)
class PageRequest:
    """What a client asked of a list: a page (`limit`), or every row in scope (no `limit`)."""

    limit: int | None = None
    offset: int = 0

    @property
    def complete(self) -> bool:
        return self.limit is None


def page_statement(statement: S, page: Page, *, key: InstrumentedAttribute[int]) -> S:
    """`statement` narrowed to `page`, ordered by `key` descending, with one extra row (`page_of`)."""
    if page.before is not None:
        statement = statement.where(key < page.before)
    return statement.order_by(key.desc()).limit(page.limit + 1).offset(page.offset)


def page_of(rows: Sequence[T], page: Page) -> tuple[list[T], bool]:
    """The rows of a `page_statement`: the page, and whether another page exists (the extra row came)."""
    return list(rows[: page.limit]), len(rows) > page.limit


async def fetch_page(
    session: AsyncSession, statement: Select[T], page: Page, *, key: InstrumentedAttribute[int]
) -> tuple[list[T], bool]:
    """One query for the page of ORM rows, ordered by `key` descending."""
    rows = (await session.execute(page_statement(statement, page, key=key))).scalars().unique().all()
    return page_of(rows, page)


def query_name(name: str, *, where: str = "query") -> str:
    """A name given to look a row up by (`?name=`, a manifest's name), as names are stored
    (`text.normalise_name`); 422 naming the field when none comes out."""
    try:
        return text.normalise_name(name)
    except ValueError as exc:
        raise Unprocessable.field("name", str(exc), where=where) from exc


def metadata_values(meta: SAMMetadata) -> dict[str, Any]:
    """A manifest's optional `metadata` as stored: what it leaves out takes the REST create's defaults."""
    return {
        "description": meta.description or "",
        "version": meta.version or "1.0.0",
        "annotations": meta.annotations or [],
    }


def path_id(value: str, *, not_found: str) -> int:
    """A path `{id}`: integer or hashed id; anything else cannot exist (404)."""
    parsed = parse_path_id(value)
    if parsed is None:
        raise NotFound(not_found)
    return parsed


async def flush(session: AsyncSession) -> None:
    """Flush and turn constraint violations into 409/422 (the database decides; never a 500)."""
    try:
        await session.flush()
    except IntegrityError as exc:
        raise classify_integrity_error(exc) from exc


async def insert_ignore(session: AsyncSession, model: type[Base], values: Sequence[Mapping[str, Any]]) -> int:
    """INSERT ... ON CONFLICT DO NOTHING (any unique constraint), on PostgreSQL and SQLite alike.

    Returns how many rows were inserted.
    """
    if not values:
        return 0
    insert = pg_insert if dialect_of(session) == "postgresql" else sqlite_insert
    statement = insert(model).values(list(values)).on_conflict_do_nothing()
    result = await session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)


def assign(obj: object, values: dict[str, Any]) -> bool:
    """Set only what differs, so writing the same values again changes nothing; True when something changed."""
    changed = False
    for key, value in values.items():
        if getattr(obj, key) != value:
            setattr(obj, key, value)
            changed = True
    return changed
