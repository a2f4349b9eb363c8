"""PostgreSQL: a new plugin, its parts and its tag links written by one statement that returns its view.

The INSERTs run in CTEs (`WITH new_plugin AS (INSERT ... RETURNING ...), new_prompt AS (...) ...`) and the
statement's SELECT joins their RETURNING rows to the owner, so the view needs no second read. Built once
per shape with every value a bound parameter: SQLAlchemy compiles it once, and each request only binds.
SQLite has no INSERT in a CTE: `writes.insert_plugin` writes table by table there.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Select, String, bindparam, insert, null, select
from sqlalchemy.sql.selectable import CTE

from app.models import Tag
from app.models.base import utcnow
from app.services.permissions import in_bound_ids
from app.services.plugins.statements import (
    PART_KEYS,
    PART_TABLES,
    PLUGIN_COLUMNS,
    PLUGINS,
    TAG_LINKS,
    TAG_SEPARATOR,
    with_owner,
)

# What the caller gives of a plugin and of each part (the ids and timestamps are the statement's).
PLUGIN_KEYS = ("user_profile_id", "account_id", "name", "description", "version", "annotations", "plugin_class")
_GIVEN = {part: tuple(key for key in keys if key not in ("id", "plugin_id")) for part, keys in PART_KEYS.items()}


def _bound(prefix: str, table: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: bindparam(f"{prefix}__{key}", type_=table.c[key].type) for key in keys}


@lru_cache(maxsize=4)
def insert_at_once(*, tags: bool, data: bool) -> Select[Any]:
    """The statement for a plugin with (or without) tags and static data; its row is a `statements.VIEW` row."""
    plugin_values = _bound("plugin", PLUGINS, (*PLUGIN_KEYS, "created_at", "updated_at"))
    new_plugin = insert(PLUGINS).values(plugin_values).returning(*PLUGINS.c).cte("new_plugin")
    written: dict[str, CTE] = {}
    for part in ("prompt", "selector", "data") if data else ("prompt", "selector"):
        table = PART_TABLES[part]
        row = select(new_plugin.c.id, *_bound(part, table, _GIVEN[part]).values())
        write = insert(table).from_select(["plugin_id", *_GIVEN[part]], row).returning(*table.c)
        written[part] = write.cte(f"new_{part}")
    columns: dict[str, Any] = {
        name: new_plugin.c[name] if name in PLUGINS.c else column for name, column in PLUGIN_COLUMNS.items()
    }
    columns["tags"] = bindparam("tags_joined", type_=String())
    for part, keys in PART_KEYS.items():
        for key in keys:
            columns[f"{part}__{key}"] = written[part].c[key] if part in written else null()
    statement = with_owner(columns, new_plugin)
    for cte in written.values():
        statement = statement.join(cte, cte.c.plugin_id == new_plugin.c.id)
    if tags:
        links = (
            select(new_plugin.c.id, Tag.id)
            .select_from(new_plugin)
            .join(Tag, in_bound_ids(Tag.name, "tag_names", dialect="postgresql"))
        )
        write_links = insert(TAG_LINKS).from_select(["object_id", "tag_id"], links).returning(TAG_LINKS.c.object_id)
        statement = statement.add_cte(write_links.cte("new_tag_links"))
    return statement


def insert_values(plugin: dict[str, Any], parts: dict[str, dict[str, Any]], tags: list[str]) -> dict[str, Any]:
    """The parameters of `insert_at_once` for these values."""
    now = utcnow()
    values: dict[str, Any] = {f"plugin__{key}": plugin[key] for key in PLUGIN_KEYS}
    for part, given in parts.items():
        values.update({f"{part}__{key}": given[key] for key in _GIVEN[part] if key not in ("created_at", "updated_at")})
        values[f"{part}__created_at"] = values[f"{part}__updated_at"] = now
    values["plugin__created_at"] = values["plugin__updated_at"] = now
    names = sorted(set(tags))
    values["tags_joined"] = TAG_SEPARATOR.join(names) if names else None
    if names:
        values["tag_names"] = names
    return values
