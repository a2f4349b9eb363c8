"""Writes of connections: REST create, replace, update, delete (the manifests' apply reuses `insert_connection`
and `change_connection`). Names are unique per account and kind (the database decides: 409)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, FieldError, Unprocessable
from app.models import SqlConnection
from app.schemas.connections import (
    SSL_KEY_MASK,
    ApiConnectionCreate,
    ApiConnectionPut,
    ApiConnectionUpdate,
    SqlConnectionCreate,
    SqlConnectionPut,
    SqlConnectionUpdate,
)
from app.services import tags as tag_service
from app.services.base import flush
from app.services.connections.pools import ConnectionPools
from app.services.connections.queries import (
    get_writable,
    reload,
    require_unused,
    secret_ids,
    secret_names,
)
from app.services.connections.rules import (
    MODELS,
    SECRET_ATTRIBUTES,
    Connection,
    Kind,
    check_row,
    conflict_message,
    default_port,
)
from app.services.connections.views import ConnectionRead, row_of
from app.services.permissions import acting_account, owner_in
from app.services.principals import Membership, Principal

Create = SqlConnectionCreate | ApiConnectionCreate
Put = SqlConnectionPut | ApiConnectionPut
Update = SqlConnectionUpdate | ApiConnectionUpdate
METADATA = ("name", "description", "version", "tags", "annotations")


async def read_row(session: AsyncSession, kind: Kind, connection_id: int) -> ConnectionRead:
    """The row as this unit of work left it."""
    connection = await reload(session, kind, connection_id)
    return row_of(connection, await secret_names(session, [connection]))


async def _flush(session: AsyncSession, kind: Kind, name: str) -> None:
    try:
        await flush(session)
    except Conflict as exc:
        message = conflict_message(kind, name)
        raise Conflict(message, errors=[FieldError(loc=["body", "name"], msg=message, type="unique")]) from exc


async def stored_values(
    session: AsyncSession,
    principal: Principal,
    kind: Kind,
    account_id: int,
    fields: dict[str, Any],
    *,
    current: Connection | None = None,
    where: str = "body",
) -> dict[str, Any]:
    """Given fields (snake_case, credentials as secret names) -> column values: secrets resolved in the
    account (422 naming the field), the engine's default port, a masked SSL key kept as stored."""
    values = dict(fields)
    names = {attribute: values.pop(attribute) for attribute in SECRET_ATTRIBUTES[kind] if attribute in values}
    values.update(await secret_ids(session, principal, kind, account_id, names, where=where))
    if kind == "sql":
        if values.get("ssl_key") == SSL_KEY_MASK:
            if current is None or not isinstance(current, SqlConnection) or not current.ssl_key:
                raise Unprocessable.field("sslKey", "Give the private key itself, not the mask.", where=where)
            values.pop("ssl_key")
        engine = values.get("db_engine") or (current.db_engine if isinstance(current, SqlConnection) else None)
        if engine is not None and ("port" in values or "db_engine" in values):
            port = values.get("port") if "port" in values else getattr(current, "port", None)
            if "port" not in values and isinstance(current, SqlConnection) and current.db_engine != engine:
                # The old engine's default follows the engine; a port chosen on purpose stays.
                if port == default_port(current.db_engine, None):
                    port = None
            values["port"] = default_port(engine, port)
    return values


async def insert_connection(
    session: AsyncSession,
    principal: Principal,
    kind: Kind,
    owner: Membership,
    fields: dict[str, Any],
    *,
    where: str = "body",
) -> Connection:
    """A new connection owned by `owner` (fields: metadata and the connection's own, snake_case)."""
    fields = dict(fields)
    tags = fields.pop("tags", [])
    values = await stored_values(session, principal, kind, owner.account_id, fields, where=where)
    connection: Connection = MODELS[kind](user_profile_id=owner.profile_id, account_id=owner.account_id, **values)
    await tag_service.set_tags(session, connection, tags)
    session.add(connection)
    await _flush(session, kind, connection.name)
    return connection


async def change_connection(
    session: AsyncSession,
    principal: Principal,
    kind: Kind,
    connection: Connection,
    fields: dict[str, Any],
    *,
    where: str = "body",
) -> bool:
    """Write what differs (tags loaded: `read_options`); True when something changed."""
    fields = dict(fields)
    tags = fields.pop("tags", None)
    values = await stored_values(
        session, principal, kind, connection.account_id, fields, current=connection, where=where
    )
    if tags is not None:
        values["tags"] = tags
    changed = await tag_service.assign_tagged(session, connection, values)
    check_row(kind, connection, where=where)
    if changed:
        await _flush(session, kind, connection.name)
    return changed


async def create_connection(
    session: AsyncSession, principal: Principal, kind: Kind, data: Create, *, account_number: str | None = None
) -> ConnectionRead:
    """Any member may create a connection in an account they belong to; it is owned by their profile there."""
    where = "body" if data.account_number is not None else "query"
    owner = owner_in(await acting_account(session, principal, data.account_number or account_number, where=where))
    connection = await insert_connection(
        session, principal, kind, owner, data.model_dump(exclude={"account_number"}, by_alias=False)
    )
    return await read_row(session, kind, connection.id)


async def update_connection(
    session: AsyncSession,
    principal: Principal,
    kind: Kind,
    connection_id: int,
    data: Update | Put,
) -> ConnectionRead:
    """PATCH (`Update`: only the fields sent) or PUT (`Put`: every field, missing ones at their defaults)."""
    connection = await get_writable(session, principal, kind, connection_id)
    fields = data.model_dump(exclude_unset=not isinstance(data, SqlConnectionPut | ApiConnectionPut), by_alias=False)
    await change_connection(session, principal, kind, connection, fields)
    return await read_row(session, kind, connection.id)


async def delete_found(
    session: AsyncSession, kind: Kind, connection: Connection, pools: ConnectionPools | None = None
) -> None:
    """Delete a connection found with the write scope: 409 naming the plugins that still use it."""
    await require_unused(session, kind, connection)
    model = MODELS[kind]
    try:
        await session.execute(delete(model).where(model.id == connection.id))
    except IntegrityError as exc:  # a plugin started using it meanwhile
        raise Conflict(f"The connection {connection.name!r} is used by a plugin.") from exc
    session.expunge(connection)
    if pools is not None and kind == "sql":
        await pools.discard_sql(connection.id)


async def delete_connection(
    session: AsyncSession, principal: Principal, kind: Kind, connection_id: int, pools: ConnectionPools | None = None
) -> None:
    """Ownership scope (404 outside the read scope, 403 readable but not yours)."""
    await delete_found(session, kind, await get_writable(session, principal, kind, connection_id), pools)
