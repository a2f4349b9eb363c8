"""The `Plugin` kind of the manifest API (static plugins): apply, describe, delete and the `get` table.

`app.services.manifests.plugin` (the broker) calls these; the answers come from the presenter
(`app.services.plugins.views`). Apply writes with Core statements, only what differs from the stored rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Row, Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.caching.registry import CacheRegistry, SingleFlightCache
from app.caching.rules import PLUGIN_TABLE_CACHE
from app.errors import Conflict, NotFound
from app.models import PluginMeta
from app.models.plugin import PLUGIN_KINDS
from app.reads import Reader
from app.schemas.manifests.plugin import ApiPluginManifest, PluginManifest, SqlPluginManifest
from app.services.base import metadata_values
from app.services.permissions import (
    Acting,
    get_scoped,
    owned_scope_shape,
    owner_in,
    ownership_scope,
    read_scope,
    require,
)
from app.services.plugins.lists import PluginFilters, every_snapshot
from app.services.plugins.rules import FORBIDDEN, data_values, normalised, selector_values
from app.services.plugins.snapshots import PluginSnapshot, get_table_json, get_table_row, plugin_cache
from app.services.plugins.statements import PART_TABLES, PLUGINS, VIEW
from app.services.plugins.views import PluginView, view_from
from app.services.plugins.writes import (
    delete_by_id,
    execute,
    insert_part,
    insert_plugin,
    link_tags,
    reloaded_view,
)
from app.services.principals import Principal

S = TypeVar("S", bound=Select[Any])


def _by_name_in(
    statement: S, principal: Principal, name: str, acting: Acting | None, plugin_class: str = "static"
) -> S:
    """`statement` narrowed to the plugin of `plugin_class` called `name` in the acting account, else the
    platform's."""
    accounts = [m.account_id for m in (acting,) if m is not None]
    platform = principal.platform_account_id
    if platform is not None and platform not in accounts:
        accounts.append(platform)
    first = accounts[0] if accounts else None
    return (
        statement.where(
            PluginMeta.name == name,
            PluginMeta.plugin_class == plugin_class,
            PluginMeta.account_id.in_(accounts),
            read_scope(principal, PluginMeta),
        )
        # The acting account's plugin wins over the platform's of the same name.
        .order_by((PluginMeta.account_id == first).desc() if first is not None else PluginMeta.id)
        .limit(1)
    )


def _not_found_by_name(name: str, plugin_class: str = "static") -> str:
    return f"No {PLUGIN_KINDS[plugin_class]} named {name!r} is visible to you."


async def describe_by_name(
    session: AsyncSession, principal: Principal, *, name: str, acting: Acting | None, plugin_class: str = "static"
) -> PluginView:
    statement = _by_name_in(VIEW, principal, normalised(name, where="query"), acting, plugin_class)
    row = (await session.execute(statement)).first()
    if row is None:
        raise NotFound(_not_found_by_name(name, plugin_class))
    return view_from(row._mapping)


async def delete_by_name(
    session: AsyncSession, principal: Principal, *, name: str, acting: Acting | None, plugin_class: str = "static"
) -> None:
    statement = _by_name_in(select(PluginMeta.id), principal, normalised(name, where="query"), acting, plugin_class)
    plugin_id = await get_scoped(
        session,
        statement,
        write_scope=ownership_scope(principal, PluginMeta),
        not_found=_not_found_by_name(name, plugin_class),
        forbidden=FORBIDDEN,
    )
    await delete_by_id(session, plugin_id)


async def manifest_rows(
    reader: Reader, caches: CacheRegistry, principal: Principal, *, name: str | None, plugin_class: str = "static"
) -> list[dict[str, Any]]:
    """The `get` table: the class's plugins in the read scope (newest first), filtered by name in SQL.

    The ids come from one indexed query, the rows from the plugins' snapshots (as the REST list's do), each
    built once per snapshot: re-reading and re-formatting every row cost the request four times the rest.
    """
    return [
        get_table_row(snapshot) for snapshot in await _table_snapshots(reader, caches, principal, name, plugin_class)
    ]


@dataclass(frozen=True, slots=True)
class _Table:
    """A `get` table's rows as JSON (the snapshots' own bytes, shared), and the `plugin` cache's generation
    when its build began."""

    generation: int
    rows: tuple[bytes, ...]


async def manifest_rows_json(
    reader: Reader, caches: CacheRegistry, principal: Principal, *, name: str | None, plugin_class: str = "static"
) -> list[bytes]:
    """The `get` table's rows as JSON (each serialised once per snapshot), kept per read scope and filters.

    The same table is asked for over and over (every `get plugins` of an account's members), and building
    it (the ids' query, a cache look-up and a row per plugin) cost more than the rest of the request. A table
    serves a request only if its build began at the `plugin` cache's generation the request found, or later:
    every invalidation of a plugin, its parts, tags, owner or account (this process's or, over LISTEN,
    another's) moves that generation, so no table outlives a write. An older one (kept, or a build in flight
    that began before the write) is dropped and built again.
    """
    snapshots_cache = plugin_cache(caches)
    generation = snapshots_cache.generation

    async def build() -> _Table:
        begun = snapshots_cache.generation
        found = await _table_snapshots(reader, caches, principal, name, plugin_class)
        return _Table(begun, tuple(get_table_json(snapshot) for snapshot in found))

    tables = _table_cache(caches)
    key = (owned_scope_shape(principal, "readable"), plugin_class, name)
    table = await tables.get(key, build)
    if table is None or table.generation < generation:
        tables.invalidate(key)  # also leaves a build in flight that began before the write: it will not store
        table = await tables.get(key, build)
    assert table is not None  # a build returns a table, maybe empty, never None
    return list(table.rows)


def _table_cache(caches: CacheRegistry) -> SingleFlightCache[tuple[Any, ...], _Table]:
    return caches.register(PLUGIN_TABLE_CACHE)


async def _table_snapshots(
    reader: Reader, caches: CacheRegistry, principal: Principal, name: str | None, plugin_class: str
) -> list[PluginSnapshot]:
    found = await every_snapshot(reader, caches, principal, PluginFilters(name=name, plugin_class=plugin_class))
    return [snapshot async for batch in found for snapshot in batch]


def _differs(current: dict[str, Any] | PluginView, wanted: dict[str, Any]) -> dict[str, Any]:
    """The values of `wanted` that `current` (a part's columns or the view) does not hold already."""
    if isinstance(current, PluginView):
        return {key: value for key, value in wanted.items() if getattr(current, key) != value}
    return {key: value for key, value in wanted.items() if current[key] != value}


async def _update_changed(
    session: AsyncSession, found: PluginView, plugin: dict[str, Any], tags: list[str], parts: dict[str, dict[str, Any]]
) -> bool:
    """Write what differs between `found` and the manifest's values (nothing when it is the same)."""
    changed = False
    changes = _differs(found, plugin)
    if changes:
        await execute(
            session, update(PLUGINS).where(PLUGINS.c.id == found.id).values(**changes).returning(PLUGINS.c.id)
        )
        changed = True
    if sorted(tags) != found.tags:
        await link_tags(session, found.id, tags, replace=True)
        changed = True
    for part, wanted in parts.items():
        if await write_part(session, found.id, part, getattr(found, part), wanted):
            changed = True
    return changed


async def write_part(
    session: AsyncSession, plugin_id: int, part: str, current: dict[str, Any] | None, wanted: dict[str, Any]
) -> bool:
    """Insert the part, or update what differs of it; True when something was written (its RETURNING of the
    plugin's id drops the plugin's snapshot: `cache_rules`)."""
    if current is None:
        await insert_part(session, plugin_id, part, wanted)
        return True
    changes = _differs(current, wanted)
    if not changes:
        return False
    table = PART_TABLES[part]
    statement = update(table).where(table.c.plugin_id == plugin_id).values(**changes)
    await execute(session, statement.returning(table.c.plugin_id))
    return True


async def apply_manifest(
    session: AsyncSession, principal: Principal, manifest: PluginManifest, *, acting: Acting | None
) -> tuple[PluginView, bool]:
    """Create or update the static plugin `metadata.name` of the acting account; (its view, created).

    Idempotent: applying the same manifest again writes nothing. Updating needs the ownership scope. The
    insert comes first and skips a taken name (`insert_plugin(if_absent=True)`): a new plugin costs one
    statement, an existing one a read after it.
    """
    owner = owner_in(acting)
    meta, spec = manifest.metadata, manifest.spec
    plugin, parts = manifest_values(manifest)
    tags = meta.tags or []
    parts["data"] = data_values(spec.data.description, spec.data.parameters, spec.data.static_data)
    created = await insert_plugin(
        session,
        owner,
        name=meta.name,
        description=plugin["description"],
        version=plugin["version"],
        tags=tags,
        annotations=plugin["annotations"],
        plugin_class="static",
        prompt=parts["prompt"],
        selector=parts["selector"],
        data=parts["data"],
        if_absent=True,
    )
    if created is not None:
        return created, True
    row = await named_with_rights(session, principal, owner.account_id, meta.name)
    if row is None:  # the plugin that took the name was deleted meanwhile
        raise Conflict(f"Plugin {meta.name!r} was deleted while this manifest was applied; apply it again.")
    return await update_applied(session, row, manifest.kind, "static", plugin, tags, parts), False


def manifest_values(
    manifest: PluginManifest | SqlPluginManifest | ApiPluginManifest,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The plugin's columns and its prompt and selector parts, as a manifest of any class gives them."""
    prompt, selector = manifest.spec.prompt, manifest.spec.selector
    parts = {
        "prompt": {
            "provider": prompt.provider,
            "system_role": prompt.system_role,
            "model": prompt.model,
            "temperature": prompt.temperature,
            "max_completion_tokens": prompt.max_tokens,
        },
        "selector": selector_values(selector.directive, selector.search_terms),
    }
    return metadata_values(manifest.metadata), parts


async def named_with_rights(session: AsyncSession, principal: Principal, account_id: int, name: str) -> Row[Any] | None:
    """The view of the plugin `name` of the account, with `writable` (the caller's ownership scope)."""
    statement = VIEW.where(PluginMeta.account_id == account_id, PluginMeta.name == name).add_columns(
        ownership_scope(principal, PluginMeta).label("writable")
    )
    return (await session.execute(statement)).first()


async def update_applied(
    session: AsyncSession,
    row: Row[Any],
    kind: str,
    plugin_class: str,
    plugin: dict[str, Any],
    tags: list[str],
    parts: dict[str, dict[str, Any]],
) -> PluginView:
    """A manifest applied to the plugin already of its name (`row`: `named_with_rights`): of the kind's class
    (409), writable by the caller (403), changed where it differs."""
    found = view_from(row._mapping)
    if found.plugin_class != plugin_class:
        raise Conflict(f"{found.name!r} is a {found.plugin_class} plugin; the {kind} kind is for {plugin_class} ones.")
    require(bool(row._mapping["writable"]), FORBIDDEN)
    if await _update_changed(session, found, plugin, tags, parts):
        found = await reloaded_view(session, found.id)
    return found
