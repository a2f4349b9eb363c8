"""SQL and API plugins name their connection: the name resolved to a connection of the plugin's own account.

A connection of another account is "not found" (never used, never revealed); one of the other kind is named
as such. Both are 422s naming the field.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Unprocessable
from app.models import ApiConnection, SqlConnection
from app.schemas.plugin_data import ApiDataSpec, SqlDataSpec, api_data_values, sql_data_values

CONNECTION_KINDS: dict[str, type[SqlConnection | ApiConnection]] = {"sql": SqlConnection, "api": ApiConnection}
PLUGIN_KIND_NAMES = {"sql": "SqlPlugin", "api": "ApiPlugin"}


async def connection_id(
    session: AsyncSession, account_id: int, plugin_class: str, name: str, *, field: str = "connection"
) -> int:
    """The id of the `plugin_class` connection called `name` in `account_id`; 422 naming `field` otherwise."""
    wanted = CONNECTION_KINDS[plugin_class]
    found = (
        await session.execute(select(wanted.id).where(wanted.account_id == account_id, wanted.name == name))
    ).scalar_one_or_none()
    if found is not None:
        return int(found)
    other = CONNECTION_KINDS["api" if plugin_class == "sql" else "sql"]
    exists = (
        await session.execute(select(other.id).where(other.account_id == account_id, other.name == name))
    ).scalar_one_or_none()
    kind = PLUGIN_KIND_NAMES[plugin_class]
    if exists is not None:
        message = f"{name!r} is a {other.__name__}; a {kind} needs a {wanted.__name__}."
    else:
        message = f"No {wanted.__name__} named {name!r} in the plugin's account."
    raise Unprocessable.field(field, message)


async def class_data_values(
    session: AsyncSession, account_id: int, plugin_class: str, connection: str, data: SqlDataSpec | ApiDataSpec
) -> dict[str, Any]:
    """The columns of the class's data part for `data`, its connection resolved in `account_id`."""
    connection_key = await connection_id(session, account_id, plugin_class, connection)
    if plugin_class == "sql":
        assert isinstance(data, SqlDataSpec)
        return sql_data_values(data, connection_key)
    assert isinstance(data, ApiDataSpec)
    return api_data_values(data, connection_key)
