"""Plugins: lists, the cached detail, writes of the plugin and its parts, clones, and manifests.

Reads of one plugin go through the `plugin` cache: an immutable snapshot per plugin id holding the
pre-serialised detail and parts, tagged with the owner's user and account. The cache holds facts, not
decisions: the read scope is checked against the snapshot's account on every hit. Every write of a
plugin or its parts invalidates its entry in the same unit of work.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

from pydantic_core import to_json
from sqlalchemy import Integer, Select, String, bindparam, delete, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import joinedload, selectinload
from sqlalchemy.orm.interfaces import ORMOption
from sqlalchemy.sql.functions import FunctionElement

from app import text
from app.errors import Conflict, NotFound, Unprocessable
from app.identifiers import hashed_id, record_locator
from app.models import Account, Base, PluginDataStatic, PluginMeta, PluginPrompt, PluginSelector, Tag, User, UserProfile
from app.models.plugin import (
    DEFAULT_MAX_COMPLETION_TOKENS,
    DEFAULT_MODEL,
    DEFAULT_PROVIDER,
    DEFAULT_SYSTEM_ROLE,
    DEFAULT_TEMPERATURE,
    PLUGIN_KINDS,
)
from app.reads import Read, Reader
from app.schemas.manifests.plugin import PluginManifest
from app.schemas.plugins import (
    API_VERSION,
    DataPut,
    DataRead,
    PluginClone,
    PluginCreate,
    PluginDetail,
    PluginManifestRead,
    PluginUpdate,
    PromptPatch,
    PromptPut,
    PromptRead,
    SelectorPut,
    SelectorRead,
)
from app.services import tags as tag_service
from app.services.base import Page, flush
from app.services.cache import CacheRegistry, SingleFlightCache, invalidate_after_commit
from app.services.cache import Tag as CacheTag
from app.services.permissions import (
    Acting,
    acting_account,
    acting_required,
    can_read_owned,
    get_scoped,
    in_bound_ids,
    owned_scope_shape,
    ownership_scope,
    read_scope,
    require,
)
from app.services.principals import Membership, Principal

PLUGIN_CACHE = "plugin"
NOT_FOUND = "No plugin with this id is visible to you."
FORBIDDEN = "You can read this plugin but not change it: it belongs to another user."
STATIC_ONLY = "Only static plugins have static data; this plugin's class is {plugin_class}."

PROMPT_DEFAULTS: dict[str, Any] = {
    "provider": DEFAULT_PROVIDER,
    "system_role": DEFAULT_SYSTEM_ROLE,
    "model": DEFAULT_MODEL,
    "temperature": DEFAULT_TEMPERATURE,
    "max_completion_tokens": DEFAULT_MAX_COMPLETION_TOKENS,
}
# A new plugin without a selector lets the LLM decide from its description: `search_terms` would need
# terms, and `always` would put it in every prompt.
SELECTOR_DEFAULTS: dict[str, Any] = {"directive": "llm", "search_terms": []}

# --- the cache --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PluginSnapshot:
    """What a read of one plugin needs: who may see it, and its view, serialised on demand.

    Each body (the flat row of the lists, the detail, a part) is serialised on its first read and kept in
    `serialised`: a list needs only the row, a detail read only the detail, and with caches off every
    snapshot is thrown away after one use.
    """

    plugin_id: int
    account_id: int
    owner_user_id: int
    plugin_class: str
    view: PluginView
    serialised: dict[str, bytes] = field(default_factory=dict)


def _snapshot_tags(snapshot: PluginSnapshot) -> Iterable[CacheTag]:
    # The row and the detail show the owner's username, email and account number.
    yield ("user", snapshot.owner_user_id)
    yield ("account", snapshot.account_id)


def plugin_cache(caches: CacheRegistry) -> SingleFlightCache[int, PluginSnapshot]:
    return caches.register(PLUGIN_CACHE, tags_of=_snapshot_tags)


def forget(session: AsyncSession, plugin_id: int) -> None:
    """Drop the plugin's snapshot (here and in every other process) once this unit of work commits."""
    invalidate_after_commit(session, PLUGIN_CACHE, plugin_id)


_PART_READS: dict[str, type[PromptRead | SelectorRead | DataRead]] = {
    "prompt": PromptRead,
    "selector": SelectorRead,
    "data": DataRead,
}


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


def row_body(snapshot: PluginSnapshot) -> bytes:
    """The plugin's flat row as JSON (an element of a list page)."""
    return _serialised(snapshot, "row", row_of)


def detail_body(snapshot: PluginSnapshot) -> bytes:
    """The plugin's REST detail as JSON."""
    return _serialised(snapshot, "detail", detail_of)


async def _load_snapshot(reader: Reader, plugin_id: int) -> PluginSnapshot | None:
    # A connection of its own: the load is shared by concurrent requests and must outlive any one of them.
    row = await _VIEW_READ.first(reader, {"plugin_id": plugin_id})
    return None if row is None else snapshot_of(_view_of(row))


async def readable_snapshot(
    reader: Reader, caches: CacheRegistry, principal: Principal, plugin_id: int
) -> PluginSnapshot:
    """The plugin's cached snapshot, when `principal` may read it (404 otherwise, existence not revealed).

    It needs no request session: a hit does no database I/O at all, and a miss loads on a connection of its
    own (shared by concurrent requests for the same plugin).
    """
    snapshot = await plugin_cache(caches).get(plugin_id, lambda: _load_snapshot(reader, plugin_id))
    if snapshot is None or not can_read_owned(principal, snapshot.account_id):
        raise NotFound(NOT_FOUND)
    return snapshot


async def _snapshots(reader: Reader, caches: CacheRegistry, plugin_ids: Sequence[int]) -> list[PluginSnapshot]:
    """The snapshots of a page's plugins, in the page's order: cached ones as they are, the rest in one query.

    The loaded ones are cached unless an invalidation overtook the load (`SingleFlightCache.put_all`). A
    plugin deleted since the page's ids were read is left out.
    """
    cache = plugin_cache(caches)
    found = cache.peek_many(plugin_ids)
    missing = [plugin_id for plugin_id in plugin_ids if plugin_id not in found]
    if missing:
        generation = cache.generation
        rows = await _views_read(reader.engine.dialect.name).rows(reader, {"plugin_ids": missing})
        loaded = {snapshot.plugin_id: snapshot for snapshot in (snapshot_of(_view_of(row)) for row in rows)}
        cache.put_all(loaded, generation=generation)
        found.update(loaded)
    return [found[plugin_id] for plugin_id in plugin_ids if plugin_id in found]


# --- building responses -----------------------------------------------------------------------------------


def manifest_body(plugin: PluginView) -> dict[str, Any]:
    """The plugin's manifest (`PluginManifestRead`: metadata, spec, status) as camelCase JSON values.

    Built as a plain dict, like the flat row: the detail serialises it as it is (building the schema's seven
    models and dumping them cost more than the rest of a snapshot load), `manifest_of` validates it.
    """
    prompt, selector, data = plugin.prompt, plugin.selector, plugin.data
    parts = [p for p in (prompt, selector, data) if p is not None]
    return {
        "apiVersion": API_VERSION,
        "kind": PLUGIN_KINDS[plugin.plugin_class],
        "metadata": {
            "name": plugin.name,
            "description": plugin.description,
            "version": plugin.version,
            "tags": plugin.tags,
            "annotations": plugin.annotations,
            "pluginClass": plugin.plugin_class,
        },
        "spec": {
            "selector": {
                "directive": selector["directive"],
                "searchTerms": list(selector["search_terms"]) if selector["directive"] == "search_terms" else None,
            }
            if selector
            else None,
            "prompt": {
                "provider": prompt["provider"],
                "systemRole": prompt["system_role"],
                "model": prompt["model"],
                "temperature": prompt["temperature"],
                "maxTokens": prompt["max_completion_tokens"],
            }
            if prompt
            else None,
            "data": {
                "description": data["description"],
                "staticData": data["static_data"] or {},
                "parameters": data["parameters"],
            }
            if data
            else None,
        },
        "status": {
            "recordLocator": _record_locator(plugin.id),
            "created": plugin.created_at,
            "modified": max([plugin.updated_at, *(p["updated_at"] for p in parts)]),
            "accountNumber": plugin.account_number,
            "username": plugin.username,
            "dependencies": [],
        },
    }


def manifest_of(plugin: PluginView) -> PluginManifestRead:
    """The plugin's manifest: describe's and apply's result."""
    return PluginManifestRead.model_validate(manifest_body(plugin))


# Pure functions of the id, and pages show the same ids over and over.
_hashed_id = lru_cache(maxsize=65_536)(hashed_id)


@lru_cache(maxsize=65_536)
def _record_locator(id_: int) -> str:
    return record_locator("PluginMeta", id_)


def row_of(plugin: PluginView) -> dict[str, Any]:
    """The one builder of a plugin's flat row (`PluginRead`, the SDK's `Plugin`), camelCase, for lists and details.

    Built as a plain dict and serialised without validation: its values come from the database, and the
    tests hold every row against `PluginRead`.
    """
    return {
        "id": plugin.id,
        "hashedId": _hashed_id(plugin.id),
        "recordLocator": _record_locator(plugin.id),
        "createdAt": plugin.created_at,
        "updatedAt": plugin.updated_at,
        "name": plugin.name,
        "description": plugin.description,
        "version": plugin.version,
        "tags": plugin.tags,
        "annotations": plugin.annotations,
        "userProfile": {
            "user": {"username": plugin.username, "email": plugin.email},
            "account": {"accountNumber": plugin.account_number},
        },
        "pluginClass": plugin.plugin_class,
        "kind": PLUGIN_KINDS[plugin.plugin_class],
    }


def detail_of(plugin: PluginView) -> dict[str, Any]:
    """The REST detail (`PluginDetail`): the flat row and the manifest sections in one object."""
    return {**row_of(plugin), **manifest_body(plugin)}


# --- lookups ----------------------------------------------------------------------------------------------


async def _load_view(connection: AsyncConnection, plugin_id: int) -> PluginView | None:
    row = (await connection.execute(_VIEW_BY_ID, {"plugin_id": plugin_id})).first()
    return None if row is None else _view_of(row)


async def _reloaded_detail(session: AsyncSession, plugin_id: int) -> PluginDetail:
    # Flushed already: a Core read on the session's connection sees this unit of work's rows.
    plugin = await _load_view(await session.connection(), plugin_id)
    assert plugin is not None  # written in this unit of work
    return PluginDetail.model_validate(detail_of(plugin))


async def _get_owned(session: AsyncSession, principal: Principal, plugin_id: int, *options: ORMOption) -> PluginMeta:
    """The plugin, for a write: 404 outside the read scope, 403 readable but outside the ownership scope."""
    statement = select(PluginMeta).where(PluginMeta.id == plugin_id, read_scope(principal, PluginMeta))
    return await get_scoped(
        session,
        statement.options(*options),
        write_scope=ownership_scope(principal, PluginMeta),
        not_found=NOT_FOUND,
        forbidden=FORBIDDEN,
    )


async def _readable_view(session: AsyncSession, principal: Principal, plugin_id: int) -> PluginView:
    statement = _VIEW.where(PluginMeta.id == plugin_id, read_scope(principal, PluginMeta))
    row = (await session.execute(statement)).first()
    if row is None:
        raise NotFound(NOT_FOUND)
    return _view_of(row)


def _normalised(name: str, *, where: str) -> str:
    try:
        return text.normalise_name(name)
    except ValueError as exc:
        raise Unprocessable.field("name", str(exc), where=where) from exc


_TAG_LINKS = Base.metadata.tables["plugin_meta_tag"]
# Tags may not contain control characters, so this separator cannot occur inside one.
_TAG_SEPARATOR = "\x1f"


class _joined(FunctionElement[str]):
    """`string_agg(value, separator)` on PostgreSQL, `group_concat` elsewhere, the separator a plain parameter.

    SQLAlchemy's own `aggregate_strings` renders its separator as a literal at execution time, which
    re-renders the statement's SQL on every execution: a tenth of a page request's CPU.
    """

    type = String()
    inherit_cache = True


@compiles(_joined, "postgresql")
def _joined_postgresql(element: _joined, compiler: Any, **kw: Any) -> str:
    return f"string_agg({compiler.process(element.clauses, **kw)})"


@compiles(_joined)
def _joined_default(element: _joined, compiler: Any, **kw: Any) -> str:
    return f"group_concat({compiler.process(element.clauses, **kw)})"


# A row's tags as one string, computed per row of the page (an index lookup on the link table's key).
_ROW_TAGS = (
    select(_joined(Tag.name, literal(_TAG_SEPARATOR)))
    .select_from(_TAG_LINKS.join(Tag, Tag.id == _TAG_LINKS.c.tag_id))
    .where(_TAG_LINKS.c.object_id == PluginMeta.id)
    .correlate(PluginMeta)
    .scalar_subquery()
)
# The columns a flat row shows: the plugin's, its owner's, its tags aggregated.
_ROW = (
    select(
        PluginMeta.id,
        PluginMeta.name,
        PluginMeta.description,
        PluginMeta.version,
        PluginMeta.annotations,
        PluginMeta.plugin_class,
        PluginMeta.created_at,
        PluginMeta.updated_at,
        User.username,
        User.email,
        Account.account_number,
        _ROW_TAGS.label("tags"),
    )
    .join(UserProfile, UserProfile.id == PluginMeta.user_profile_id)
    .join(User, User.id == UserProfile.user_id)
    .join(Account, Account.id == PluginMeta.account_id)
)


# One plugin as plain columns: the row's columns, the ids behind the cache tags, and every column of each
# part (outer joins: a part may be missing). Reads build their responses from these rows: loading the
# same as ORM objects (seven of them, with the owner) cost three times the query itself.
_PARTS: dict[str, type[PluginPrompt | PluginSelector | PluginDataStatic]] = {
    "prompt": PluginPrompt,
    "selector": PluginSelector,
    "data": PluginDataStatic,
}
_PART_KEYS = {part: tuple(column.key for column in model.__table__.c) for part, model in _PARTS.items()}


def _view_statement() -> Select[Any]:
    statement = _ROW.add_columns(
        PluginMeta.account_id,
        UserProfile.user_id,
        *(column for model in _PARTS.values() for column in model.__table__.c),
    )
    for model in _PARTS.values():
        statement = statement.outerjoin(model, model.plugin_id == PluginMeta.id)
    return statement


_VIEW = _view_statement()
_VIEW_BY_ID = _VIEW.where(PluginMeta.id == bindparam("plugin_id"))
_VIEW_READ = Read(_VIEW_BY_ID)
_HEAD = len(_ROW.selected_columns) + 2


@lru_cache(maxsize=4)
def _views_read(dialect: str) -> Read:
    """The views of the plugins bound as `plugin_ids` (a page's cache misses)."""
    return Read(_VIEW.where(in_bound_ids(PluginMeta.id, "plugin_ids", dialect=dialect)))


@dataclass(frozen=True, slots=True)
class PluginView:
    """One plugin with its owner, tags and parts; a part is a dict of its columns (None when missing)."""

    id: int
    account_id: int
    owner_user_id: int
    name: str
    description: str
    version: str
    tags: list[str]
    annotations: list[dict[str, Any]]
    plugin_class: str
    created_at: datetime
    updated_at: datetime
    username: str
    email: str
    account_number: str
    prompt: dict[str, Any] | None
    selector: dict[str, Any] | None
    data: dict[str, Any] | None


def _view_of(row: Sequence[Any]) -> PluginView:
    (id_, name, description, version, annotations, plugin_class, created_at, updated_at, username, email) = row[:10]
    account_number, tags, account_id, owner_user_id = row[10:_HEAD]
    parts: dict[str, dict[str, Any] | None] = {}
    start = _HEAD
    for part, keys in _PART_KEYS.items():
        values = dict(zip(keys, row[start : start + len(keys)], strict=True))
        start += len(keys)
        parts[part] = None if values["id"] is None else values
    return PluginView(
        id=id_,
        account_id=account_id,
        owner_user_id=owner_user_id,
        name=name,
        description=description,
        version=version,
        tags=_tag_list(tags),
        annotations=annotations,
        plugin_class=plugin_class,
        created_at=created_at,
        updated_at=updated_at,
        username=username,
        email=email,
        account_number=account_number,
        **parts,
    )


def _tag_list(aggregated: str | None) -> list[str]:
    """`_ROW_TAGS`'s string as the sorted list every response shows."""
    return sorted(aggregated.split(_TAG_SEPARATOR)) if aggregated else []


@lru_cache(maxsize=128)
def _page_read(
    dialect: str, scope_column: str | None, *, name: bool, tag: bool, plugin_class: bool, account_number: bool
) -> Read:
    """The ids of a page, for one combination of filters, every value a bound parameter.

    Built once per combination and reused: SQLAlchemy computes a statement's cache key once per statement
    object, and a `Read` compiles its statement once.
    """
    statement = select(PluginMeta.id)
    if scope_column is not None:
        statement = statement.where(in_bound_ids(getattr(PluginMeta, scope_column), "scope_ids", dialect=dialect))
    if name:
        statement = statement.where(PluginMeta.name == bindparam("name"))
    if tag:
        statement = statement.where(PluginMeta.has_tag(bindparam("tag")))
    if plugin_class:
        statement = statement.where(PluginMeta.plugin_class == bindparam("plugin_class"))
    if account_number:
        number = select(Account.id).where(Account.account_number == bindparam("account_number")).scalar_subquery()
        statement = statement.where(PluginMeta.account_id == number)
    page = (bindparam("limit", type_=Integer), bindparam("offset", type_=Integer))
    return Read(statement.order_by(PluginMeta.id.desc()).limit(page[0]).offset(page[1]))


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
        values["name"] = _normalised(filters.name, where="query")
    if filters.tag is not None:
        values["tag"] = filters.tag.strip()
    if filters.plugin_class is not None:
        values["plugin_class"] = filters.plugin_class
    if filters.account_number is not None:
        values["account_number"] = filters.account_number
    read = _page_read(
        reader.engine.dialect.name,
        scope_column,
        name=filters.name is not None,
        tag=filters.tag is not None,
        plugin_class=filters.plugin_class is not None,
        account_number=filters.account_number is not None,
    )
    return [row[0] for row in await read.rows(reader, values)]


def _rows_json(snapshots: Sequence[PluginSnapshot]) -> bytes:
    """The plugins' flat rows as JSON array elements (no brackets)."""
    return b",".join([row_body(snapshot) for snapshot in snapshots])


async def list_plugins(
    reader: Reader,
    caches: CacheRegistry,
    principal: Principal,
    page: Page,
    filters: PluginFilters = PluginFilters(),
) -> tuple[bytes, bool]:
    """A page of flat rows, newest first, as JSON (and whether another page exists).

    The filters and the scope pick the page's ids in one indexed query; the rows are the plugins' cached
    snapshots (`_snapshots`), which every write of a plugin, its parts or its owner invalidates, as it does
    for the detail. Re-reading and re-serialising fifty rows on every request cost four times the query.
    """
    ids = await _ids(reader, principal, filters, page.limit + 1, page.offset)
    snapshots = await _snapshots(reader, caches, ids[: page.limit])
    return b"[" + _rows_json(snapshots) + b"]", len(ids) > page.limit


async def all_plugins(
    reader: Reader, caches: CacheRegistry, principal: Principal, filters: PluginFilters, *, offset: int = 0
) -> AsyncIterator[bytes]:
    """Every plugin in scope and filters, newest first, as chunks of JSON array elements.

    The ids are read at once (one query, as a page's are; a bad filter fails here, before any row is
    sent); the rows follow from the snapshots, `_BATCH` at a time, the cache misses of each batch loaded
    in one query.
    """
    ids = await _ids(reader, principal, filters, _NO_LIMIT, offset)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(ids), _BATCH):
            yield _rows_json(await _snapshots(reader, caches, ids[start : start + _BATCH]))

    return chunks()


# --- writes -----------------------------------------------------------------------------------------------


def _assign(obj: object, values: dict[str, Any]) -> bool:
    """Set only what differs, so re-applying the same values writes nothing (and keeps updated_at)."""
    changed = False
    for key, value in values.items():
        if getattr(obj, key) != value:
            setattr(obj, key, value)
            changed = True
    return changed


async def _set_tags(session: AsyncSession, plugin: PluginMeta, names: list[str]) -> bool:
    if sorted(names) == sorted(plugin.tags):
        return False
    await tag_service.set_tags(session, plugin, names)
    return True


def _prompt_values(prompt: dict[str, Any] | None) -> dict[str, Any]:
    if prompt is None:
        return dict(PROMPT_DEFAULTS)
    return {key: prompt[key] for key in PROMPT_DEFAULTS}


def _selector_values(directive: str, search_terms: list[str] | None) -> dict[str, Any]:
    return {"directive": directive, "search_terms": list(search_terms or []) if directive == "search_terms" else []}


def _data_values(
    description: str, parameters: dict[str, Any] | None, static_data: dict[str, Any] | None
) -> dict[str, Any]:
    return {"description": description, "parameters": parameters, "static_data": static_data or {}}


async def _insert_plugin(
    session: AsyncSession,
    owner: Membership,
    *,
    name: str,
    description: str,
    version: str,
    tags: list[str],
    annotations: list[dict[str, Any]],
    plugin_class: str,
    prompt: dict[str, Any],
    selector: dict[str, Any],
    data: dict[str, Any] | None,
) -> PluginMeta:
    """Insert the plugin and its parts in this unit of work (all or nothing); 409 on a taken name."""
    plugin = PluginMeta(
        user_profile_id=owner.profile_id,
        account_id=owner.account_id,
        name=name,
        description=description,
        version=version,
        annotations=annotations,
        plugin_class=plugin_class,
    )
    plugin.tag_links = await tag_service.resolve(session, tags)
    plugin.prompt = PluginPrompt(**prompt)
    plugin.selector = PluginSelector(**selector)
    if plugin_class == "static":
        plugin.data = PluginDataStatic(**(data or _data_values(description, None, None)))
    session.add(plugin)
    await flush(session)
    # An id can come back after a delete on SQLite (rowid reuse): never let an old snapshot answer for it.
    forget(session, plugin.id)
    return plugin


def owner_in(acting: Acting | None) -> Membership:
    """The caller's profile in the acting account: a plugin is owned by a profile (422 without one there)."""
    acting = acting_required(acting)
    if acting.membership is None:
        raise Unprocessable.field("accountNumber", f"You have no profile in account {acting.account_number}.")
    return acting.membership


async def _owner(
    session: AsyncSession, principal: Principal, body_number: str | None, query_number: str | None
) -> Membership:
    where = "body" if body_number is not None else "query"
    return owner_in(await acting_account(session, principal, body_number or query_number, where=where))


async def create_plugin(
    session: AsyncSession, principal: Principal, data: PluginCreate, *, account_number: str | None = None
) -> PluginDetail:
    """Any member may create a plugin in an account they belong to; it is owned by their profile there.

    The account is the body's `accountNumber`, else `account_number` (the query's), else the acting one.
    """
    if data.data is not None and data.plugin_class != "static":
        raise Unprocessable.field("data", STATIC_ONLY.format(plugin_class=data.plugin_class))
    owner = await _owner(session, principal, data.account_number, account_number)
    plugin = await _insert_plugin(
        session,
        owner,
        name=data.name,
        description=data.description,
        version=data.version,
        tags=data.tags,
        annotations=data.annotations,
        plugin_class=data.plugin_class,
        prompt=data.prompt.model_dump(by_alias=False) if data.prompt else dict(PROMPT_DEFAULTS),
        selector=_selector_values(data.selector.directive, data.selector.search_terms)
        if data.selector
        else dict(SELECTOR_DEFAULTS),
        data=_data_values(data.data.description, data.data.parameters, data.data.static_data) if data.data else None,
    )
    return await _reloaded_detail(session, plugin.id)


async def update_plugin(
    session: AsyncSession, principal: Principal, plugin_id: int, data: PluginUpdate
) -> PluginDetail:
    plugin = await _get_owned(session, principal, plugin_id, selectinload(PluginMeta.tag_links))
    changes = data.model_dump(exclude_unset=True, by_alias=False)
    tags = changes.pop("tags", None)
    changed = _assign(plugin, changes)
    if tags is not None:
        changed = await _set_tags(session, plugin, tags) or changed
    if changed:
        await flush(session)
        forget(session, plugin.id)
    return await _reloaded_detail(session, plugin.id)


async def _delete(session: AsyncSession, plugin: PluginMeta) -> None:
    # The database cascades to the parts and tag links (ON DELETE CASCADE on every child table).
    await session.execute(delete(PluginMeta).where(PluginMeta.id == plugin.id))
    forget(session, plugin.id)


async def delete_plugin(session: AsyncSession, principal: Principal, plugin_id: int) -> None:
    """Ownership scope (the original deleted with read scope: anyone could delete shared plugins)."""
    await _delete(session, await _get_owned(session, principal, plugin_id))


async def clone_plugin(
    session: AsyncSession, principal: Principal, plugin_id: int, data: PluginClone, *, account_number: str | None
) -> PluginDetail:
    """Copy a readable plugin (metadata, tags, parts) into a new one owned by the caller."""
    source = await _readable_view(session, principal, plugin_id)
    owner = await _owner(session, principal, data.account_number, account_number)
    selector = source.selector
    static = source.data
    clone = await _insert_plugin(
        session,
        owner,
        name=data.name,
        description=source.description,
        version=source.version,
        tags=source.tags,
        annotations=copy.deepcopy(source.annotations),
        plugin_class=source.plugin_class,
        prompt=_prompt_values(source.prompt),
        selector=_selector_values(selector["directive"], selector["search_terms"])
        if selector
        else dict(SELECTOR_DEFAULTS),
        data=_data_values(
            static["description"], copy.deepcopy(static["parameters"]), copy.deepcopy(static["static_data"])
        )
        if static
        else None,
    )
    return await _reloaded_detail(session, clone.id)


# --- parts ------------------------------------------------------------------------------------------------


def cached_part(snapshot: PluginSnapshot, part: Literal["prompt", "selector", "data"]) -> bytes:
    """A part's response from the snapshot; 404 when the plugin has no such part (409 for non-static data)."""
    if part == "data" and snapshot.plugin_class != "static":
        raise Conflict(STATIC_ONLY.format(plugin_class=snapshot.plugin_class))
    body = snapshot.serialised.get(part)
    if body is None:
        row: dict[str, Any] | None = getattr(snapshot.view, part)
        if row is None:
            raise NotFound(f"This plugin has no {part} yet; PUT one to create it.")
        identity = {"hashed_id": _hashed_id(row["id"]), "record_locator": _PARTS[part].locator_of(row["id"])}
        read = _PART_READS[part].model_validate({**row, **identity})
        body = snapshot.serialised[part] = read.__pydantic_serializer__.to_json(read, by_alias=True)
    return body


async def write_prompt(
    session: AsyncSession, principal: Principal, plugin_id: int, data: PromptPut | PromptPatch
) -> PromptRead:
    """PUT (`PromptPut`: missing fields take their defaults) or PATCH (missing fields keep their values)."""
    replace = isinstance(data, PromptPut)
    values = data.model_dump(by_alias=False, exclude_unset=not replace)
    plugin = await _get_owned(session, principal, plugin_id, joinedload(PluginMeta.prompt))
    prompt = plugin.prompt
    if prompt is None:
        prompt = PluginPrompt(plugin_id=plugin.id, **PROMPT_DEFAULTS)
        session.add(prompt)
    if _assign(prompt, values) or prompt.id is None:
        await flush(session)
        forget(session, plugin.id)
    return PromptRead.model_validate(prompt)


async def write_selector(
    session: AsyncSession, principal: Principal, plugin_id: int, data: SelectorPut
) -> SelectorRead:
    plugin = await _get_owned(session, principal, plugin_id, joinedload(PluginMeta.selector))
    selector = plugin.selector
    if selector is None:
        selector = PluginSelector(plugin_id=plugin.id)
        session.add(selector)
    if _assign(selector, _selector_values(data.directive, data.search_terms)) or selector.id is None:
        await flush(session)
        forget(session, plugin.id)
    return SelectorRead.model_validate(selector)


async def write_data(session: AsyncSession, principal: Principal, plugin_id: int, data: DataPut) -> DataRead:
    plugin = await _get_owned(session, principal, plugin_id, joinedload(PluginMeta.data))
    if plugin.plugin_class != "static":
        raise Conflict(STATIC_ONLY.format(plugin_class=plugin.plugin_class))
    static = plugin.data
    if static is None:
        static = PluginDataStatic(plugin_id=plugin.id)
        session.add(static)
    if _assign(static, _data_values(data.description, data.parameters, data.static_data)) or static.id is None:
        await flush(session)
        forget(session, plugin.id)
    return DataRead.model_validate(static)


# --- manifests (the `Plugin` kind: static plugins) ---------------------------------------------------------


def _by_name_in(principal: Principal, name: str, acting: Acting | None) -> Select[PluginMeta]:
    """Static plugins called `name` in the acting account, else the platform account (read scope)."""
    accounts = [m.account_id for m in (acting,) if m is not None]
    platform = principal.platform_account_id
    if platform is not None and platform not in accounts:
        accounts.append(platform)
    first = accounts[0] if accounts else None
    return (
        select(PluginMeta)
        .where(
            PluginMeta.name == name,
            PluginMeta.plugin_class == "static",
            PluginMeta.account_id.in_(accounts),
            read_scope(principal, PluginMeta),
        )
        # The acting account's plugin wins over the platform's of the same name.
        .order_by((PluginMeta.account_id == first).desc() if first is not None else PluginMeta.id)
        .limit(1)
    )


def _not_found_by_name(name: str) -> str:
    return f"No Plugin named {name!r} is visible to you."


async def describe_by_name(
    session: AsyncSession, principal: Principal, *, name: str, acting: Acting | None
) -> PluginManifestRead:
    statement = _by_name_in(principal, _normalised(name, where="query"), acting)
    plugin = await get_scoped(session, statement, not_found=_not_found_by_name(name))
    view = await _load_view(await session.connection(), plugin.id)
    assert view is not None  # found just now, in this transaction
    return manifest_of(view)


async def delete_by_name(session: AsyncSession, principal: Principal, *, name: str, acting: Acting | None) -> None:
    statement = _by_name_in(principal, _normalised(name, where="query"), acting)
    plugin = await get_scoped(
        session,
        statement,
        write_scope=ownership_scope(principal, PluginMeta),
        not_found=_not_found_by_name(name),
        forbidden=FORBIDDEN,
    )
    await _delete(session, plugin)


def _timestamp(value: datetime) -> str:
    """JSON text for a `get` cell, spelled as every other timestamp of the API (UTC, `Z`)."""
    return value.isoformat().replace("+00:00", "Z")


async def manifest_rows(session: AsyncSession, principal: Principal, *, name: str | None) -> list[dict[str, Any]]:
    """The `get` table: static plugins in the read scope (newest first), filtered by name in SQL."""
    statement = (
        select(
            PluginMeta.name,
            PluginMeta.description,
            PluginMeta.plugin_class,
            PluginMeta.version,
            User.email,
            User.username,
            Account.account_number,
            PluginMeta.created_at,
            PluginMeta.updated_at,
        )
        .join(UserProfile, UserProfile.id == PluginMeta.user_profile_id)
        .join(User, User.id == UserProfile.user_id)
        .join(Account, Account.id == PluginMeta.account_id)
        .where(PluginMeta.plugin_class == "static", read_scope(principal, PluginMeta))
        .order_by(PluginMeta.id.desc())
    )
    if name is not None:
        statement = statement.where(PluginMeta.name == _normalised(name, where="query"))
    rows = (await session.execute(statement)).all()
    return [
        {
            "name": row.name,
            "description": row.description,
            "pluginClass": row.plugin_class,
            "version": row.version,
            "email": row.email,
            "username": row.username,
            "accountNumber": row.account_number,
            "createdAt": _timestamp(row.created_at),
            "updatedAt": _timestamp(row.updated_at),
        }
        for row in rows
    ]


async def apply_manifest(
    session: AsyncSession, principal: Principal, manifest: PluginManifest, *, acting: Acting | None
) -> tuple[PluginManifestRead, bool]:
    """Create or update the static plugin `metadata.name` of the acting account; (manifest, created).

    Idempotent: applying the same manifest again writes nothing. Updating needs the ownership scope.
    """
    owner = owner_in(acting)
    meta, spec = manifest.metadata, manifest.spec
    values: dict[str, Any] = {
        "description": meta.description or "",
        "version": meta.version or "1.0.0",
        "annotations": meta.annotations or [],
    }
    prompt = {
        "provider": spec.prompt.provider,
        "system_role": spec.prompt.system_role,
        "model": spec.prompt.model,
        "temperature": spec.prompt.temperature,
        "max_completion_tokens": spec.prompt.max_tokens,
    }
    selector = _selector_values(spec.selector.directive, spec.selector.search_terms)
    data = _data_values(spec.data.description, spec.data.parameters, spec.data.static_data)

    statement = (
        select(PluginMeta)
        .where(PluginMeta.account_id == owner.account_id, PluginMeta.name == meta.name)
        .options(
            selectinload(PluginMeta.tag_links),
            joinedload(PluginMeta.prompt),
            joinedload(PluginMeta.selector),
            joinedload(PluginMeta.data),
        )
        .add_columns(ownership_scope(principal, PluginMeta).label("writable"))
    )
    found = (await session.execute(statement)).unique().one_or_none()
    if found is None:
        plugin = await _insert_plugin(
            session,
            owner,
            name=meta.name,
            tags=meta.tags or [],
            plugin_class="static",
            prompt=prompt,
            selector=selector,
            data=data,
            **values,
        )
        created = True
    else:
        plugin, writable = found
        if plugin.plugin_class != "static":
            raise Conflict(f"{meta.name!r} is a {plugin.plugin_class} plugin; the Plugin kind is for static ones.")
        require(bool(writable), FORBIDDEN)
        changed = _assign(plugin, values)
        changed = await _set_tags(session, plugin, meta.tags or []) or changed
        for attribute, model, wanted in (
            ("prompt", PluginPrompt, prompt),
            ("selector", PluginSelector, selector),
            ("data", PluginDataStatic, data),
        ):
            part = getattr(plugin, attribute)
            if part is None:
                session.add(model(plugin_id=plugin.id, **wanted))
                changed = True
            else:
                changed = _assign(part, wanted) or changed
        if changed:
            await flush(session)
            forget(session, plugin.id)
        created = False
    reloaded = await _load_view(await session.connection(), plugin.id)
    assert reloaded is not None  # written in this unit of work
    return manifest_of(reloaded), created
