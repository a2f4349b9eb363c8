"""The plugin domain's Core SELECTs, each built once: the view of one plugin, the ids of a page.

Every column a view shows is labelled with its `PluginView` field name (a part's columns as
`<part>__<column>`), so rows are decoded by those names (`app.services.plugins.views.view_of`), never by
hand-counted positions.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Integer, Select, SQLColumnExpression, String, Table, bindparam, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.selectable import NamedFromClause

from app.models import (
    Account,
    ApiConnection,
    Base,
    PluginDataApi,
    PluginDataSql,
    PluginDataStatic,
    PluginMeta,
    PluginPrompt,
    PluginSelector,
    SqlConnection,
    Tag,
    User,
    UserProfile,
)
from app.models.plugin import PLUGIN_CLASSES
from app.reads import Read
from app.services.permissions import in_bound_ids

TAG_LINKS = Base.metadata.tables["plugin_meta_tag"]
# Tags may not contain control characters, so this separator cannot occur inside one.
TAG_SEPARATOR = "\x1f"

PARTS: dict[str, type[PluginPrompt | PluginSelector | PluginDataStatic | PluginDataSql | PluginDataApi]] = {
    "prompt": PluginPrompt,
    "selector": PluginSelector,
    "data": PluginDataStatic,
    "sql_data": PluginDataSql,
    "api_data": PluginDataApi,
}
# Each class's data part (a plugin has at most the one of its class).
DATA_PARTS = {"static": "data", "sql": "sql_data", "api": "api_data"}
# The connection each connected data part names, shown by its name (a column of the view, not of the part).
PART_CONNECTIONS: dict[str, type[SqlConnection | ApiConnection]] = {
    "sql_data": SqlConnection,
    "api_data": ApiConnection,
}
PLUGINS: Table = Base.metadata.tables[PluginMeta.__tablename__]
PART_TABLES: dict[str, Table] = {part: Base.metadata.tables[model.__tablename__] for part, model in PARTS.items()}
# A part's keys as a view holds them: its columns, and `connection` (the name) for the connected parts.
PART_KEYS = {
    part: (*(column.key for column in model.__table__.c), *(("connection",) if part in PART_CONNECTIONS else ()))
    for part, model in PARTS.items()
}


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


# A row's tags as one string, computed per row (an index lookup on the link table's key).
_ROW_TAGS = (
    select(_joined(Tag.name, literal(TAG_SEPARATOR)))
    .select_from(TAG_LINKS.join(Tag, Tag.id == TAG_LINKS.c.tag_id))
    .where(TAG_LINKS.c.object_id == PluginMeta.id)
    .correlate(PluginMeta)
    .scalar_subquery()
)

# The one definition of what a plugin view holds: field name -> column. The plugin's own columns, its
# owner's (the one owner join), its tags aggregated, the ids behind the cache tags.
PLUGIN_COLUMNS: dict[str, SQLColumnExpression[Any]] = {
    "id": PluginMeta.id,
    "account_id": PluginMeta.account_id,
    "owner_user_id": UserProfile.user_id,
    "name": PluginMeta.name,
    "description": PluginMeta.description,
    "version": PluginMeta.version,
    "tags": _ROW_TAGS,
    "annotations": PluginMeta.annotations,
    "plugin_class": PluginMeta.plugin_class,
    "created_at": PluginMeta.created_at,
    "updated_at": PluginMeta.updated_at,
    "username": User.username,
    "email": User.email,
    "account_number": Account.account_number,
}
# Every column of each part, outer-joined (a part may be missing). Reads build their responses from these
# rows: loading the same as ORM objects (seven of them, with the owner) cost three times the query itself.
PART_COLUMNS: dict[str, SQLColumnExpression[Any]] = {
    **{f"{part}__{column.key}": column for part, model in PARTS.items() for column in model.__table__.c},
    **{f"{part}__connection": connection.name for part, connection in PART_CONNECTIONS.items()},
}


def with_owner(columns: dict[str, SQLColumnExpression[Any]], plugins: NamedFromClause | None = None) -> Select[Any]:
    """`columns` (labelled with their names) of `plugins` (the table, or rows just inserted) joined to their
    owner: the one owner join."""
    plugins = PLUGINS if plugins is None else plugins
    labelled: list[Any] = [column.label(name) for name, column in columns.items()]
    return (
        select(*labelled)
        .select_from(plugins)
        .join(UserProfile, UserProfile.id == plugins.c.user_profile_id)
        .join(User, User.id == UserProfile.user_id)
        .join(Account, Account.id == plugins.c.account_id)
    )


def _view_statement() -> Select[Any]:
    statement = with_owner({**PLUGIN_COLUMNS, **PART_COLUMNS})
    for model in PARTS.values():
        statement = statement.outerjoin(model, model.plugin_id == PluginMeta.id)
    for part, connection in PART_CONNECTIONS.items():
        statement = statement.outerjoin(connection, connection.id == PARTS[part].connection_id)  # type: ignore[union-attr]
    return statement


VIEW = _view_statement()
# The labels of `VIEW`'s columns, in order: how a row (SQLAlchemy's or the driver's) is read by name.
VIEW_NAMES: tuple[str, ...] = tuple(VIEW.selected_columns.keys())
VIEW_BY_ID = VIEW.where(PluginMeta.id == bindparam("plugin_id"))
VIEW_READ = Read(VIEW_BY_ID)


@lru_cache(maxsize=4)
def views_read(dialect: str) -> Read:
    """The views of the plugins bound as `plugin_ids` (a page's cache misses)."""
    return Read(VIEW.where(in_bound_ids(PluginMeta.id, "plugin_ids", dialect=dialect)))


# A list's row: the plugin's own columns and its owner, no parts (what `views.row_of` shows).
ROW = with_owner(PLUGIN_COLUMNS)
ROW_NAMES: tuple[str, ...] = tuple(ROW.selected_columns.keys())


@lru_cache(maxsize=4)
def rows_read(dialect: str) -> Read:
    """The list rows of the plugins bound as `plugin_ids` (a list's cache misses)."""
    return Read(ROW.where(in_bound_ids(PluginMeta.id, "plugin_ids", dialect=dialect)))


@lru_cache(maxsize=128)
def page_read(
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


# The manifest `get` table's cells (`app.services.plugins.views.get_row`), one table per plugin class (kind).
GET_FIELDS = ("name", "description", "plugin_class", "version", "email", "username", "account_number")
GET_TABLES = {
    plugin_class: with_owner({name: PLUGIN_COLUMNS[name] for name in (*GET_FIELDS, "created_at", "updated_at")}).where(
        PluginMeta.plugin_class == plugin_class
    )
    for plugin_class in PLUGIN_CLASSES
}
GET_TABLE = GET_TABLES["static"]
