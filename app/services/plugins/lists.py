"""Plugin lists: a page's ids in one indexed query, the rows from the row cache (`rows`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from app.caching.registry import CacheRegistry
from app.reads import Reader
from app.services.base import Page
from app.services.permissions import owned_scope_shape
from app.services.plugins.rows import row_bodies
from app.services.plugins.rules import normalised
from app.services.plugins.snapshots import PluginSnapshot, snapshots
from app.services.plugins.statements import page_read
from app.services.principals import Principal


@dataclass(frozen=True, slots=True)
class PluginFilters:
    """What a plugin list is narrowed to (every field optional)."""

    scope: Literal["readable", "owned"] = "readable"
    name: str | None = None
    tag: str | None = None
    plugin_class: str | None = None
    account_number: str | None = None


# A complete list reads every id of its scope and filters: a LIMIT no list reaches (both backends accept it).
_NO_LIMIT = 2**31 - 1
# Snapshots per chunk of a complete list.
_BATCH = 500


async def _ids(reader: Reader, principal: Principal, filters: PluginFilters, limit: int, offset: int) -> list[int]:
    """The ids of the plugins in scope and filters, newest first: one indexed query."""
    scope_column, scope_ids = owned_scope_shape(principal, filters.scope)
    values: dict[str, Any] = {"scope_ids": list(scope_ids), "limit": limit, "offset": offset}
    if filters.name is not None:
        values["name"] = normalised(filters.name, where="query")
    if filters.tag is not None:
        values["tag"] = filters.tag.strip()
    if filters.plugin_class is not None:
        values["plugin_class"] = filters.plugin_class
    if filters.account_number is not None:
        values["account_number"] = filters.account_number
    read = page_read(
        reader.engine.dialect.name,
        scope_column,
        name=filters.name is not None,
        tag=filters.tag is not None,
        plugin_class=filters.plugin_class is not None,
        account_number=filters.account_number is not None,
    )
    return [row[0] for row in await read.rows(reader, values)]


async def list_plugins(
    reader: Reader,
    caches: CacheRegistry,
    principal: Principal,
    page: Page,
    filters: PluginFilters = PluginFilters(),
) -> tuple[bytes, bool]:
    """A page of flat rows, newest first, as JSON (and whether another page exists).

    The filters and the scope pick the page's ids in one indexed query; the rows are the plugins' cached
    rows, which every write of a plugin, its parts or its owner invalidates, as it does for the detail.
    Re-reading and re-serialising fifty rows on every request cost four times the query.
    """
    ids = await _ids(reader, principal, filters, page.limit + 1, page.offset)
    return b"[" + b",".join(await row_bodies(reader, caches, ids[: page.limit])) + b"]", len(ids) > page.limit


async def every_snapshot(
    reader: Reader, caches: CacheRegistry, principal: Principal, filters: PluginFilters, *, offset: int = 0
) -> AsyncIterator[Sequence[PluginSnapshot]]:
    """The snapshots of every plugin in scope and filters, newest first, in chunks.

    The ids are read at once (one query, as a page's are; a bad filter fails here, before any row is
    sent); the snapshots follow `_BATCH` at a time, the cache misses of each batch loaded in one query.
    """
    ids = await _ids(reader, principal, filters, _NO_LIMIT, offset)

    async def chunks() -> AsyncIterator[Sequence[PluginSnapshot]]:
        for start in range(0, len(ids), _BATCH):
            yield await snapshots(reader, caches, ids[start : start + _BATCH])

    return chunks()


async def all_plugins(
    reader: Reader, caches: CacheRegistry, principal: Principal, filters: PluginFilters, *, offset: int = 0
) -> AsyncIterator[bytes]:
    """Every plugin in scope and filters, newest first, as chunks of JSON array elements (no brackets).

    The ids are read at once, as `every_snapshot` reads them; the rows follow `_BATCH` at a time.
    """
    ids = await _ids(reader, principal, filters, _NO_LIMIT, offset)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(ids), _BATCH):
            yield b",".join(await row_bodies(reader, caches, ids[start : start + _BATCH]))

    return chunks()
