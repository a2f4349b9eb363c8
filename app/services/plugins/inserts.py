"""PostgreSQL: a new plugin, its parts and its tag links written by one statement that returns its view.

The INSERTs run in CTEs (`WITH new_plugin AS (INSERT ... RETURNING ...), new_prompt AS (...) ...`) and the
statement's SELECT joins their RETURNING rows to the owner, so the view needs no second read. Built once
per shape with every value a bound parameter: SQLAlchemy compiles it once, and each request only binds.

The statement is the whole create, so it runs without BEGIN and COMMIT, on a connection of the runtime's
reader lent for that one round trip (`cache_rules.write_alone`; in a unit of work that has begun, on its
connection), and it publishes the new plugin's id for the other processes' caches itself
(`cache_notify.announcing`). Its tags are linked from the `tag` rows that exist when it starts, and the
names no row has yet (rare: tags are shared by every plugin) are inserted by a CTE of their own; one a
concurrent writer inserted first is taken over by its no-op `ON CONFLICT DO UPDATE`, which returns that
row's id where `DO NOTHING` would return none. A manifest apply inserts `if_absent`: the plugin is written
unless the account already has one of that name (no row comes back), which spares apply a read before
every create. SQLite has no INSERT in a CTE: `writes.insert_plugin` writes table by table there.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Select, String, Table, bindparam, exists, func, insert, null, select, true, union_all
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql.selectable import CTE

from app.caching.notify import announcing
from app.models import Base, Tag
from app.models.base import utcnow
from app.reads import Read
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
TAGS: Table = Base.metadata.tables[Tag.__tablename__]
_GIVEN = {part: tuple(key for key in keys if key not in ("id", "plugin_id")) for part, keys in PART_KEYS.items()}


def _bound(prefix: str, table: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: bindparam(f"{prefix}__{key}", type_=table.c[key].type) for key in keys}


@lru_cache(maxsize=8)
def insert_at_once(*, tags: bool, data: bool, if_absent: bool = False) -> Select[Any]:
    """The statement for a plugin with (or without) tags and static data; its row is a `statements.VIEW` row
    (plus `cache_announced`). `if_absent`: no row when the account has a plugin of that name."""
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
        statement = statement.add_cte(_tag_links(new_plugin))
    # Its row is the new plugin's: the cache rules read it as an insert into `plugin_meta`.
    return announcing(statement, "plugin_meta", new_plugin)


@lru_cache(maxsize=8)
def insert_alone(*, tags: bool, data: bool, if_absent: bool = False) -> Read:
    """`insert_at_once` as the whole unit of work, run on the runtime's reader (`cache_rules.write_alone`)."""
    return Read(insert_at_once(tags=tags, data=data, if_absent=if_absent))


def _tag_links(new_plugin: CTE) -> CTE:
    """The links of the new plugin to the tags named in `tag_names`: those that exist, and those inserted
    (in name order, the order every writer takes the rows in, so concurrent ones cannot deadlock)."""
    wanted = func.unnest(bindparam("tag_names", type_=ARRAY(TAGS.c.name.type))).table_valued("name").alias("wanted")
    missing = select(wanted.c.name).where(~exists().where(TAGS.c.name == wanted.c.name)).order_by(wanted.c.name)
    insert_missing = pg_insert(TAGS).from_select(["name"], missing)
    new_tags = (
        insert_missing.on_conflict_do_update(index_elements=[TAGS.c.name], set_={"name": insert_missing.excluded.name})
        .returning(TAGS.c.id)
        .cte("new_tags")
    )
    existing = select(TAGS.c.id).where(in_bound_ids(TAGS.c.name, "tag_names", dialect="postgresql"))
    tag_ids = union_all(existing, select(new_tags.c.id)).subquery("tag_ids")
    links = select(new_plugin.c.id, tag_ids.c.id).select_from(new_plugin).join(tag_ids, true())
    write = insert(TAG_LINKS).from_select(["object_id", "tag_id"], links).returning(TAG_LINKS.c.object_id)
    return write.cte("new_tag_links")


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
