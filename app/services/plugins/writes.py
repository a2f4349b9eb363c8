"""Writes of plugins and their parts: REST create, update, delete, clone and the three part routes.

A new plugin is written with Core inserts: on PostgreSQL one statement for the plugin, its parts, its tags and
tag links (`inserts`), elsewhere the plugin with RETURNING, its tags in two set-based statements and one insert
per part; the ORM's unit of work cost about as much CPU as the rest of the request. Every statement that
changes a plugin's rows returns the plugin's id, from which `cache_rules` derives what to drop.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from sqlalchemy import Executable, Row, bindparam, delete, insert, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload
from sqlalchemy.orm.interfaces import ORMOption

from app.caching import rules as cache_rules
from app.db import dialect_of, single_statement, transactional
from app.db_errors import classify_integrity_error
from app.errors import Conflict, NotFound, Unprocessable
from app.models import PluginDataStatic, PluginMeta, PluginPrompt, PluginSelector, Tag
from app.reads import Read
from app.schemas.plugin_data import ApiDataSpec, SqlDataSpec
from app.schemas.plugins import (
    DataPut,
    DataRead,
    PluginClone,
    PluginCreate,
    PluginDetail,
    PluginUpdate,
    PromptPatch,
    PromptPut,
    PromptRead,
    SelectorPut,
    SelectorRead,
)
from app.services import tags as tag_service
from app.services.base import assign, flush, insert_ignore
from app.services.permissions import acting_account, get_scoped, owner_in, ownership_scope, read_scope
from app.services.plugins.connection_refs import class_data_values, connection_id
from app.services.plugins.inserts import insert_alone, insert_at_once, insert_values
from app.services.plugins.rules import (
    FORBIDDEN,
    NOT_FOUND,
    PROMPT_DEFAULTS,
    SELECTOR_DEFAULTS,
    STATIC_ONLY,
    data_values,
    prompt_values,
    selector_values,
)
from app.services.plugins.statements import DATA_PARTS, PART_TABLES, PLUGINS, TAG_LINKS, VIEW, VIEW_BY_ID
from app.services.plugins.views import PluginView, detail_of, view_from, view_of
from app.services.principals import Membership, Principal

# Links every tag named in `tag_names` to `plugin_id`: one set-based statement, whatever their number.
_LINK_TAGS = (
    insert(TAG_LINKS)
    .from_select(
        ["object_id", "tag_id"],
        select(bindparam("plugin_id", type_=PluginMeta.id.type), Tag.id).where(
            Tag.name.in_(bindparam("tag_names", expanding=True))
        ),
    )
    .returning(TAG_LINKS.c.object_id)
)


async def execute(
    session: AsyncSession, statement: Executable, values: Mapping[str, Any] | None = None
) -> Sequence[Row[Any]]:
    """Run a Core write returning rows in the unit of work: its rows. Constraint violations become 409/422
    (the database decides; never a 500).

    On the session's connection, through `cache_rules.write`: it derives the cache invalidations from the
    statement's RETURNING rows, as the session does, without the ORM's execution of a Core statement.
    """
    try:
        return await cache_rules.write(session, statement, values)
    except IntegrityError as exc:
        raise classify_integrity_error(exc) from exc


async def execute_alone(session: AsyncSession, read: Read, values: Mapping[str, Any]) -> Sequence[Any] | None:
    """Run a statement that is the whole unit of work on the runtime's reader (`cache_rules.write_alone`): its
    rows, or None when the session cannot (the caller runs it with `execute`). Violations as `execute`'s."""
    try:
        return await cache_rules.write_alone(session, read, values)
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise classify_integrity_error(exc) from exc


async def reloaded_view(session: AsyncSession, plugin_id: int) -> PluginView:
    """The plugin as this unit of work left it (a Core read on the session's connection sees its rows)."""
    row = (await session.execute(VIEW_BY_ID, {"plugin_id": plugin_id})).first()
    assert row is not None  # written in this unit of work
    return view_of(row)


async def link_tags(session: AsyncSession, plugin_id: int, names: list[str], *, replace: bool) -> None:
    """Make `names` the plugin's tags: missing tags created (one statement), links written (one more)."""
    if replace:
        await session.execute(
            delete(TAG_LINKS).where(TAG_LINKS.c.object_id == plugin_id).returning(TAG_LINKS.c.object_id)
        )
    if names:
        await insert_tags(session, names)
        await session.execute(_LINK_TAGS, {"plugin_id": plugin_id, "tag_names": names})


async def insert_tags(session: AsyncSession, names: list[str]) -> None:
    """Create the tags of `names` that do not exist yet (one statement; concurrent writers may race)."""
    if names:
        # In one global order: concurrent writers inserting the same new tags in different orders would each
        # wait for a row the other inserted (a deadlock, which PostgreSQL breaks by failing one of them).
        await insert_ignore(session, Tag, [{"name": name} for name in sorted(set(names))])


async def insert_part(session: AsyncSession, plugin_id: int, part: str, values: dict[str, Any]) -> None:
    table = PART_TABLES[part]
    await execute(session, insert(table).values(plugin_id=plugin_id, **values).returning(table.c.plugin_id))


async def insert_plugin(
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
    if_absent: bool = False,
) -> PluginView | None:
    """Insert the plugin and its parts in this unit of work (all or nothing); 409 on a taken name, or with
    `if_absent` None (nothing written) when the owner's account has a plugin of this name.

    On PostgreSQL in one statement returning the view, and the whole unit of work when it wrote (the caller
    writes nothing more); elsewhere one per table and a read of the view.
    """
    plugin = {
        "user_profile_id": owner.profile_id,
        "account_id": owner.account_id,
        "name": name,
        "description": description,
        "version": version,
        "annotations": annotations,
        "plugin_class": plugin_class,
    }
    parts = {"prompt": prompt, "selector": selector}
    if plugin_class == "static":
        parts["data"] = data or data_values(description, None, None)
    elif data is not None:
        parts[DATA_PARTS[plugin_class]] = data
    names = sorted(set(tags))
    # The one-statement insert covers the static parts; SQL and API data go table by table (rare writes).
    if dialect_of(session) == "postgresql" and parts.keys() <= {"prompt", "selector", "data"}:
        shape = {"tags": bool(names), "data": "data" in parts, "if_absent": if_absent}
        values = insert_values(plugin, parts, names)
        rows = await execute_alone(session, insert_alone(**shape), values)  # asyncpg's records, read by name
        if rows is None:  # not on the reader: on the unit of work's connection
            await single_statement(session)  # the statement is the whole create
            rows = [row._mapping for row in await execute(session, insert_at_once(**shape), values)]
        if not rows:
            await transactional(session)  # nothing written; what the caller writes next is one transaction
            return None
        return view_from(rows[0], shared=False)  # the create's answer, presented once
    write = insert(PLUGINS).values(**plugin)
    if if_absent:
        taken = (PLUGINS.c.account_id, PLUGINS.c.name)
        write = sqlite_insert(PLUGINS).values(**plugin).on_conflict_do_nothing(index_elements=taken)
    inserted = await execute(session, write.returning(PLUGINS.c.id))
    if not inserted:
        return None
    plugin_id: int = inserted[0].id
    # An id can come back after a delete on SQLite (rowid reuse): the insert's RETURNING id drops any old
    # snapshot of it (`cache_rules`).
    await link_tags(session, plugin_id, names, replace=False)
    for part, values in parts.items():
        await insert_part(session, plugin_id, part, values)
    return await reloaded_view(session, plugin_id)


async def _owner(
    session: AsyncSession, principal: Principal, body_number: str | None, query_number: str | None
) -> Membership:
    where = "body" if body_number is not None else "query"
    return owner_in(await acting_account(session, principal, body_number or query_number, where=where))


async def _detail(session: AsyncSession, plugin_id: int) -> PluginDetail:
    return PluginDetail.model_validate(detail_of(await reloaded_view(session, plugin_id)))


def created(plugin: PluginView | None) -> PluginView:
    """The view `insert_plugin` returns when it was not asked to skip a taken name (it then always writes)."""
    assert plugin is not None  # without `if_absent` a taken name is a 409, never None
    return plugin


async def create_plugin(
    session: AsyncSession, principal: Principal, data: PluginCreate, *, account_number: str | None = None
) -> PluginView:
    """Any member may create a plugin in an account they belong to; it is owned by their profile there.

    The account is the body's `accountNumber`, else `account_number` (the query's), else the acting one.
    The router presents the view (`views.detail_of`).
    """
    if data.data is not None and data.plugin_class != "static":
        raise Unprocessable.field("data", STATIC_ONLY.format(plugin_class=data.plugin_class))
    class_data = _class_data_of(data)
    owner = await _owner(session, principal, data.account_number, account_number)
    connected: dict[str, Any] | None = None
    if class_data is not None and data.connection is not None:
        connected = await class_data_values(session, owner.account_id, data.plugin_class, data.connection, class_data)
    plugin = await insert_plugin(
        session,
        owner,
        name=data.name,
        description=data.description,
        version=data.version,
        tags=data.tags,
        annotations=data.annotations,
        plugin_class=data.plugin_class,
        prompt=data.prompt.model_dump(by_alias=False) if data.prompt else dict(PROMPT_DEFAULTS),
        selector=selector_values(data.selector.directive, data.selector.search_terms)
        if data.selector
        else dict(SELECTOR_DEFAULTS),
        data=data_values(data.data.description, data.data.parameters, data.data.static_data)
        if data.data
        else connected,
    )
    return created(plugin)


def _class_data_of(data: PluginCreate) -> SqlDataSpec | ApiDataSpec | None:
    """The SQL or API data of a new plugin, checked against its class: each needs the other (`connection`
    with `sqlData`/`apiData`), and neither belongs to another class (422 naming the field)."""
    fields = {"sql": ("sqlData", data.sql_data), "api": ("apiData", data.api_data)}
    for plugin_class, (field, value) in fields.items():
        if value is not None and data.plugin_class != plugin_class:
            raise Unprocessable.field(field, f"{field} is for {plugin_class} plugins; this one is {data.plugin_class}.")
    if data.plugin_class == "static":
        if data.connection is not None:
            raise Unprocessable.field("connection", "Static plugins have no connection.")
        return None
    field, value = fields[data.plugin_class]
    if value is not None and data.connection is None:
        raise Unprocessable.field("connection", f"connection is required with {field}: a connection's name.")
    if value is None and data.connection is not None:
        raise Unprocessable.field(field, f"{field} is required with connection.")
    return value


async def get_owned(session: AsyncSession, principal: Principal, plugin_id: int, *options: ORMOption) -> PluginMeta:
    """The plugin, for a write: 404 outside the read scope, 403 readable but outside the ownership scope."""
    statement = select(PluginMeta).where(PluginMeta.id == plugin_id, read_scope(principal, PluginMeta))
    return await get_scoped(
        session,
        statement.options(*options),
        write_scope=ownership_scope(principal, PluginMeta),
        not_found=NOT_FOUND,
        forbidden=FORBIDDEN,
    )


async def update_plugin(
    session: AsyncSession, principal: Principal, plugin_id: int, data: PluginUpdate
) -> PluginDetail:
    plugin = await get_owned(session, principal, plugin_id, selectinload(PluginMeta.tag_links))
    changes = data.model_dump(exclude_unset=True, by_alias=False)
    tags = changes.pop("tags", None)
    changed = assign(plugin, changes)
    if tags is not None and sorted(tags) != sorted(plugin.tags):
        await tag_service.set_tags(session, plugin, tags)
        changed = True
    if changed:
        await flush(session)
    return await _detail(session, plugin.id)


async def delete_by_id(session: AsyncSession, plugin_id: int) -> None:
    # The database cascades to the parts and tag links (ON DELETE CASCADE on every child table).
    await session.execute(delete(PLUGINS).where(PLUGINS.c.id == plugin_id).returning(PLUGINS.c.id))


async def delete_plugin(session: AsyncSession, principal: Principal, plugin_id: int) -> None:
    """Ownership scope (the original deleted with read scope: anyone could delete shared plugins)."""
    await delete_by_id(session, (await get_owned(session, principal, plugin_id)).id)


async def clone_plugin(
    session: AsyncSession, principal: Principal, plugin_id: int, data: PluginClone, *, account_number: str | None
) -> PluginView:
    """Copy a readable plugin (metadata, tags, parts) into a new one owned by the caller (presented as
    `create_plugin`'s)."""
    row = (await session.execute(VIEW.where(PluginMeta.id == plugin_id, read_scope(principal, PluginMeta)))).first()
    if row is None:
        raise NotFound(NOT_FOUND)
    source = view_of(row)
    owner = await _owner(session, principal, data.account_number, account_number)
    selector = source.selector
    static = source.data
    # A SQL or API clone uses the connection of the same name in its own account (never another account's).
    connected = _copied_class_data(source)
    if connected is not None:
        connected["connection_id"] = await connection_id(
            session, owner.account_id, source.plugin_class, connected.pop("connection")
        )
    clone = await insert_plugin(
        session,
        owner,
        name=data.name,
        description=source.description,
        version=source.version,
        tags=source.tags,
        annotations=copy.deepcopy(source.annotations),
        plugin_class=source.plugin_class,
        prompt=prompt_values(source.prompt),
        selector=selector_values(selector["directive"], selector["search_terms"])
        if selector
        else dict(SELECTOR_DEFAULTS),
        data=data_values(
            static["description"], copy.deepcopy(static["parameters"]), copy.deepcopy(static["static_data"])
        )
        if static
        else connected,
    )
    return created(clone)


def _copied_class_data(source: PluginView) -> dict[str, Any] | None:
    """A copy of the source's SQL or API data columns (with its connection's name, not its id)."""
    if source.plugin_class == "static":
        return None
    row: dict[str, Any] | None = getattr(source, DATA_PARTS[source.plugin_class])
    if row is None:
        return None
    skipped = ("id", "plugin_id", "created_at", "updated_at", "connection_id")
    return {key: copy.deepcopy(value) for key, value in row.items() if key not in skipped}


async def write_prompt(
    session: AsyncSession, principal: Principal, plugin_id: int, data: PromptPut | PromptPatch
) -> PromptRead:
    """PUT (`PromptPut`: missing fields take their defaults) or PATCH (missing fields keep their values)."""
    replace = isinstance(data, PromptPut)
    values = data.model_dump(by_alias=False, exclude_unset=not replace)
    plugin = await get_owned(session, principal, plugin_id, joinedload(PluginMeta.prompt))
    prompt = plugin.prompt
    if prompt is None:
        prompt = PluginPrompt(plugin_id=plugin.id, **PROMPT_DEFAULTS)
        session.add(prompt)
    if assign(prompt, values) or prompt.id is None:
        await flush(session)
    return PromptRead.model_validate(prompt)


async def write_selector(
    session: AsyncSession, principal: Principal, plugin_id: int, data: SelectorPut
) -> SelectorRead:
    plugin = await get_owned(session, principal, plugin_id, joinedload(PluginMeta.selector))
    selector = plugin.selector
    if selector is None:
        selector = PluginSelector(plugin_id=plugin.id)
        session.add(selector)
    if assign(selector, selector_values(data.directive, data.search_terms)) or selector.id is None:
        await flush(session)
    return SelectorRead.model_validate(selector)


async def write_data(session: AsyncSession, principal: Principal, plugin_id: int, data: DataPut) -> DataRead:
    plugin = await get_owned(session, principal, plugin_id, joinedload(PluginMeta.data))
    if plugin.plugin_class != "static":
        raise Conflict(STATIC_ONLY.format(plugin_class=plugin.plugin_class))
    static = plugin.data
    if static is None:
        static = PluginDataStatic(plugin_id=plugin.id)
        session.add(static)
    if assign(static, data_values(data.description, data.parameters, data.static_data)) or static.id is None:
        await flush(session)
    return DataRead.model_validate(static)
