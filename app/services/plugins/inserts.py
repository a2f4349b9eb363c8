"""PostgreSQL: a new plugin, its parts and its tag links written by one statement that returns its view.

The INSERTs run in CTEs (`WITH new_plugin AS (INSERT ... RETURNING ...), new_prompt AS (...) ...`) and the
statement's SELECT joins their RETURNING rows to the owner, so the view needs no second read. Built once
per shape with every value a bound parameter: SQLAlchemy compiles it once, and each request only binds.

The tags are linked from the `tag` rows that exist when the statement starts, and the row says how many it
linked: a tag seen for the first time (rare: tags are shared by every plugin) is created and linked by two
more statements (`writes.insert_plugin`), so the common write is one round trip. A manifest apply inserts
`if_absent`: the plugin is written unless the account already has one of that name (no row comes back),
which spares apply a read before every create. SQLite has no INSERT in a CTE: `writes.insert_plugin` writes
table by table there.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Select, String, bindparam, func, insert, null, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql.selectable import CTE

from app.caching import rules as cache_rules
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


@lru_cache(maxsize=8)
def insert_at_once(*, tags: bool, data: bool, if_absent: bool = False) -> Select[Any]:
    """The statement for a plugin with (or without) tags and static data; its row is a `statements.VIEW` row
    plus `tags_linked` (with tags). `if_absent`: no row when the account has a plugin of that name."""
    plugin_values = _bound("plugin", PLUGINS, (*PLUGIN_KEYS, "created_at", "updated_at"))
    plugin = pg_insert(PLUGINS).values(plugin_values)
    if if_absent:
        plugin = plugin.on_conflict_do_nothing(index_elements=[PLUGINS.c.account_id, PLUGINS.c.name])
    new_plugin = plugin.returning(*PLUGINS.c).cte("new_plugin")
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
        written_links = write_links.cte("new_tag_links")
        statement = statement.add_columns(
            select(func.count()).select_from(written_links).scalar_subquery().label("tags_linked")
        )
    # Its row is the new plugin's: the cache rules read it as an insert into `plugin_meta`.
    return statement.execution_options(**cache_rules.writes("plugin_meta"))


# Links the tags named in `tag_names` that `plugin_id` lacks (after `insert_at_once` found some missing).
LINK_MISSING_TAGS = (
    pg_insert(TAG_LINKS)
    .from_select(
        ["object_id", "tag_id"],
        select(bindparam("plugin_id", type_=PLUGINS.c.id.type), Tag.id).where(
            in_bound_ids(Tag.name, "tag_names", dialect="postgresql")
        ),
    )
    .on_conflict_do_nothing()
    .returning(TAG_LINKS.c.object_id)
)


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
