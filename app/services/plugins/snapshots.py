"""The `plugin` cache: an immutable snapshot per plugin id, its bodies serialised on first use.

A snapshot is tagged with the owner's user and account (the row and the detail show their username,
email and account number). The cache holds facts, not decisions: the read scope is checked against the
snapshot's account on every hit. Writes drop entries without naming them (`cache_rules`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic_core import to_json

from app.caching.registry import CacheRegistry, SingleFlightCache
from app.caching.registry import Tag as CacheTag
from app.caching.rules import PLUGIN_CACHE as PLUGIN_CACHE
from app.errors import NotFound
from app.reads import Reader
from app.schemas.journal import table_row_json
from app.services.permissions import can_read_owned
from app.services.plugins.rules import NOT_FOUND
from app.services.plugins.statements import DATA_PARTS, VIEW_READ, views_read
from app.services.plugins.views import PluginView, detail_of, get_row, part_body, view_of
from app.services.principals import Principal


@dataclass(frozen=True, slots=True)
class PluginSnapshot:
    """What a read of one plugin needs: who may see it, and its view, serialised on demand.

    Each body (the detail, a part) is serialised on its first read and kept in `serialised`: a detail
    read needs only the detail (a list's rows are the `rows` cache's), and with caches off every
    snapshot is thrown away after one use. The manifest `get` table's row is kept in `table_row` as JSON
    values (the protocol puts it in its envelope), built on its first read too.
    """

    plugin_id: int
    account_id: int
    owner_user_id: int
    plugin_class: str
    view: PluginView
    serialised: dict[str, bytes] = field(default_factory=dict)
    table_row: dict[str, dict[str, Any]] = field(default_factory=dict)


def _snapshot_tags(snapshot: PluginSnapshot) -> Iterable[CacheTag]:
    yield ("user", snapshot.owner_user_id)
    yield ("account", snapshot.account_id)


def plugin_cache(caches: CacheRegistry) -> SingleFlightCache[int, PluginSnapshot]:
    return caches.register(PLUGIN_CACHE, tags_of=_snapshot_tags)


def snapshot_of(plugin: PluginView) -> PluginSnapshot:
    return PluginSnapshot(
        plugin_id=plugin.id,
        account_id=plugin.account_id,
        owner_user_id=plugin.owner_user_id,
        plugin_class=plugin.plugin_class,
        view=plugin,
    )


def _serialised(snapshot: PluginSnapshot, name: str, build: Callable[[PluginView], dict[str, Any]]) -> bytes:
    # Concurrent readers may both serialise a body: the same bytes, and a dict store is atomic.
    body = snapshot.serialised.get(name)
    if body is None:
        body = snapshot.serialised[name] = to_json(build(snapshot.view))
    return body


def detail_body(snapshot: PluginSnapshot) -> bytes:
    """The plugin's REST detail as JSON."""
    return _serialised(snapshot, "detail", detail_of)


def get_table_row(snapshot: PluginSnapshot) -> dict[str, Any]:
    """The plugin's row of the manifest `get` table (shared by every reader: not to be changed)."""
    row = snapshot.table_row.get("get")
    if row is None:
        row = snapshot.table_row["get"] = get_row(snapshot.view)
    return row


def get_table_json(snapshot: PluginSnapshot) -> bytes:
    """The plugin's row of the manifest `get` table as JSON (`table_row_json`), serialised once per snapshot."""
    body = snapshot.serialised.get("get_row")
    if body is None:
        body = snapshot.serialised["get_row"] = table_row_json(get_table_row(snapshot))
    return body


def cached_part(snapshot: PluginSnapshot, part: Literal["prompt", "selector", "data"]) -> bytes:
    """A part's response from the snapshot; 404 when the plugin has no such part.

    `data` is the data of the plugin's class: static data, SQL data or API data.
    """
    if part == "data":
        part = DATA_PARTS[snapshot.plugin_class]  # type: ignore[assignment]
    body = snapshot.serialised.get(part)
    if body is None:
        row: dict[str, Any] | None = getattr(snapshot.view, part)
        if row is None:
            raise NotFound(f"This plugin has no {part.replace('_', ' ')} yet; PUT one to create it.")
        body = snapshot.serialised[part] = part_body(part, row)
    return body


async def _load_snapshot(reader: Reader, plugin_id: int, *, shared: bool) -> PluginSnapshot | None:
    """The plugin's snapshot; its values `shared` with the cached views' when the cache keeps it (with caches
    off it serves one request: interning its strings and JSON would save no memory, only cost CPU)."""
    # A connection of its own: the load is shared by concurrent requests and must outlive any one of them.
    row = await VIEW_READ.first(reader, {"plugin_id": plugin_id})
    return None if row is None else snapshot_of(view_of(row, shared=shared))


async def readable_snapshot(
    reader: Reader, caches: CacheRegistry, principal: Principal, plugin_id: int
) -> PluginSnapshot:
    """The plugin's cached snapshot, when `principal` may read it (404 otherwise, existence not revealed).

    It needs no request session: a hit does no database I/O at all, and a miss loads on a connection of its
    own (shared by concurrent requests for the same plugin).
    """
    cache = plugin_cache(caches)
    snapshot = await cache.get(plugin_id, lambda: _load_snapshot(reader, plugin_id, shared=cache.keeps))
    if snapshot is None or not can_read_owned(principal, snapshot.account_id):
        raise NotFound(NOT_FOUND)
    return snapshot


async def snapshots(reader: Reader, caches: CacheRegistry, plugin_ids: Sequence[int]) -> list[PluginSnapshot]:
    """The snapshots of a page's plugins, in the page's order: cached ones as they are, the rest in one query
    (shared by concurrent pages missing the same plugins, `SingleFlightCache.get_many`).

    The loaded ones are cached unless an invalidation overtook the load. A plugin deleted since the page's ids
    were read is left out.
    """

    cache = plugin_cache(caches)

    async def load(missing: list[int]) -> dict[int, PluginSnapshot]:
        rows = await views_read(reader.engine.dialect.name).rows(reader, {"plugin_ids": missing})
        views = (view_of(row, shared=cache.keeps) for row in rows)  # shared when kept, as `_load_snapshot`'s
        return {snapshot.plugin_id: snapshot for snapshot in map(snapshot_of, views)}

    found = await cache.get_many(plugin_ids, load)
    return [found[plugin_id] for plugin_id in plugin_ids if plugin_id in found]
