"""Connections found in scope (by id, by name), secret names resolved to ids and back, the plugins using one.

Read scope: the members of the owning account and superusers (`permissions.member_scope`: unlike plugins,
the platform account's connections are not readable by everyone). Write scope: the ownership scope.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic.alias_generators import to_camel
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload
from sqlalchemy.orm.interfaces import ORMOption

from app.errors import Conflict, Unprocessable
from app.models import Account, PluginDataApi, PluginDataSql, PluginMeta, Secret, User, UserProfile
from app.services.base import Page, fetch_page
from app.services.connections.rules import FORBIDDEN, MODELS, NOT_FOUND, SECRET_ATTRIBUTES, Connection, Kind
from app.services.permissions import get_scoped, member_scope, ownership_scope
from app.services.principals import Principal
from app.services.secrets import rules as secret_rules

PLUGIN_DATA: dict[Kind, Any] = {"sql": PluginDataSql, "api": PluginDataApi}


def read_options(kind: Kind) -> tuple[ORMOption, ...]:
    model = MODELS[kind]
    return (
        joinedload(model.user_profile).options(
            joinedload(UserProfile.user).load_only(User.username, User.email),
            joinedload(UserProfile.account).load_only(Account.account_number),
        ),
        selectinload(model.tag_links),
    )


def readable(principal: Principal, kind: Kind) -> Select[Any]:
    model = MODELS[kind]
    return select(model).where(member_scope(principal, model))


async def list_connections(
    session: AsyncSession,
    principal: Principal,
    kind: Kind,
    page: Page,
    *,
    name: str | None = None,
    tag: str | None = None,
) -> tuple[list[Connection], bool]:
    """The connections of the caller's accounts (a superuser: all), newest first."""
    model = MODELS[kind]
    statement = readable(principal, kind).options(*read_options(kind))
    if name is not None:
        statement = statement.where(model.name == name)
    if tag is not None:
        statement = statement.where(model.has_tag(tag.strip()))
    return await fetch_page(session, statement, page, key=model.id)


async def get_readable(session: AsyncSession, principal: Principal, kind: Kind, connection_id: int) -> Connection:
    statement = readable(principal, kind).where(MODELS[kind].id == connection_id).options(*read_options(kind))
    connection: Connection = await get_scoped(session, statement, not_found=NOT_FOUND[kind])
    return connection


async def get_writable(session: AsyncSession, principal: Principal, kind: Kind, connection_id: int) -> Connection:
    """404 outside the read scope, 403 readable but outside the ownership scope."""
    model = MODELS[kind]
    statement = readable(principal, kind).where(model.id == connection_id).options(*read_options(kind))
    connection: Connection = await get_scoped(
        session,
        statement,
        write_scope=ownership_scope(principal, model),
        not_found=NOT_FOUND[kind],
        forbidden=FORBIDDEN,
    )
    return connection


async def reload(session: AsyncSession, kind: Kind, connection_id: int) -> Connection:
    """The connection as this unit of work left it (owner, account and tags loaded anew)."""
    model = MODELS[kind]
    statement = (
        select(model)
        .where(model.id == connection_id)
        .options(*read_options(kind))
        .execution_options(populate_existing=True)
    )
    connection: Connection = (await session.execute(statement)).unique().scalar_one()
    return connection


def not_found_by_name(kind: Kind, name: str) -> str:
    return f"No {'SqlConnection' if kind == 'sql' else 'ApiConnection'} named {name!r} is visible to you."


async def find_by_name(
    session: AsyncSession,
    principal: Principal,
    kind: Kind,
    account_id: int,
    name: str,
    *,
    write: bool = False,
) -> Connection:
    """The connection `name` of the account `account_id` (the acting one): 404 when absent or not readable;
    with `write`, 403 when readable but not the caller's to change."""
    model = MODELS[kind]
    statement = (
        readable(principal, kind).where(model.account_id == account_id, model.name == name).options(*read_options(kind))
    )
    connection: Connection = await get_scoped(
        session,
        statement,
        write_scope=ownership_scope(principal, model) if write else None,
        not_found=not_found_by_name(kind, name),
        forbidden=FORBIDDEN,
    )
    return connection


async def secret_ids(
    session: AsyncSession,
    principal: Principal,
    kind: Kind,
    account_id: int,
    names: dict[str, str | None],
    *,
    where: str = "body",
) -> dict[str, int | None]:
    """`{credential field: secret name or None}` -> `{column: secret id or None}`, each a secret of the account
    that the caller can see (the secrets' ownership scope: a member may not point a connection, and so its
    calls, at another member's secret).

    One query; an unknown name is a 422 naming its field (another account's secret is unknown here).
    """
    wanted = {name for name in names.values() if name is not None}
    found: dict[str, int] = {}
    if wanted:
        statement = select(Secret.name, Secret.id).where(
            Secret.account_id == account_id, Secret.name.in_(wanted), secret_rules.visible(principal)
        )
        found = {row.name: row.id for row in await session.execute(statement)}
    columns: dict[str, int | None] = {}
    for attribute, name in names.items():
        if name is not None and name not in found:
            message = f"No secret named {name!r} in this account."
            raise Unprocessable.field(to_camel(attribute), message, where=where)
        columns[SECRET_ATTRIBUTES[kind][attribute]] = found[name] if name is not None else None
    return columns


async def secret_names(session: AsyncSession, connections: Iterable[Connection]) -> dict[int, str]:
    """The names of the secrets these connections use, by secret id (one query)."""
    ids: set[int] = set()
    for connection in connections:
        for column in ("password_secret_id", "api_key_secret_id", "proxy_password_secret_id"):
            value = getattr(connection, column, None)
            if value is not None:
                ids.add(value)
    if not ids:
        return {}
    return {row.id: row.name for row in await session.execute(select(Secret.id, Secret.name).where(Secret.id.in_(ids)))}


async def plugins_using(session: AsyncSession, kind: Kind, connection_id: int) -> list[str]:
    """The names of the plugins whose data uses the connection, by name."""
    data = PLUGIN_DATA[kind]
    statement = (
        select(PluginMeta.name)
        .join(data, data.plugin_id == PluginMeta.id)
        .where(data.connection_id == connection_id)
        .order_by(PluginMeta.name)
    )
    return list((await session.execute(statement)).scalars())


async def require_unused(session: AsyncSession, kind: Kind, connection: Connection) -> None:
    """409 naming the plugins that still use the connection (the foreign key would refuse the delete too)."""
    names = await plugins_using(session, kind, connection.id)
    if names:
        listed = ", ".join(repr(name) for name in names)
        raise Conflict(
            f"The connection {connection.name!r} is used by the plugin(s) {listed}: delete them, or point them at "
            "another connection, first."
        )
