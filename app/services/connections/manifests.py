"""The `SqlConnection` and `ApiConnection` kinds of the manifest API: apply, describe, delete, the `get` table.

Names resolve in the acting account only (connections are not shared with the platform's readers): another
tenant's connection is a 404, like an absent one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.schemas.manifests.connection import ApiConnectionManifest, SqlConnectionManifest
from app.services.base import metadata_values
from app.services.connections.pools import ConnectionPools
from app.services.connections.queries import (
    find_by_name,
    not_found_by_name,
    plugins_using,
    read_options,
    readable,
    reload,
    secret_names,
)
from app.services.connections.rules import FORBIDDEN, MODELS, Connection, Kind
from app.services.connections.views import get_row, manifest_of
from app.services.connections.writes import change_connection, delete_found, insert_connection
from app.services.permissions import Acting, owner_in, ownership_scope, require
from app.services.plugins.rules import normalised
from app.services.principals import Principal

Manifest = SqlConnectionManifest | ApiConnectionManifest


async def describe_found(session: AsyncSession, kind: Kind, connection: Connection) -> dict[str, Any]:
    names = await secret_names(session, [connection])
    return manifest_of(kind, connection, names, await plugins_using(session, kind, connection.id))


def _account_of(kind: Kind, name: str, acting: Acting | None) -> int:
    if acting is None:  # the caller belongs to no account: nothing of this kind is theirs to see
        raise NotFound(not_found_by_name(kind, name))
    return acting.account_id


async def describe_by_name(
    session: AsyncSession, principal: Principal, kind: Kind, *, name: str, acting: Acting | None
) -> dict[str, Any]:
    wanted = normalised(name, where="query")
    connection = await find_by_name(session, principal, kind, _account_of(kind, wanted, acting), wanted)
    return await describe_found(session, kind, connection)


async def delete_by_name(
    session: AsyncSession,
    principal: Principal,
    kind: Kind,
    *,
    name: str,
    acting: Acting | None,
    pools: ConnectionPools | None = None,
) -> None:
    wanted = normalised(name, where="query")
    account_id = _account_of(kind, wanted, acting)
    connection = await find_by_name(session, principal, kind, account_id, wanted, write=True)
    await delete_found(session, kind, connection, pools)


async def manifest_rows(
    session: AsyncSession, principal: Principal, kind: Kind, *, name: str | None
) -> list[dict[str, Any]]:
    """The `get` table: the connections the caller can read (newest first), filtered by name in SQL."""
    model = MODELS[kind]
    statement = readable(principal, kind).options(*read_options(kind)).order_by(model.id.desc())
    if name is not None:
        statement = statement.where(model.name == normalised(name, where="query"))
    return [get_row(connection) for connection in (await session.execute(statement)).unique().scalars()]


async def apply_manifest(
    session: AsyncSession, principal: Principal, kind: Kind, manifest: Manifest, *, acting: Acting | None
) -> tuple[dict[str, Any], bool]:
    """Create or update the connection `metadata.name` of the acting account; (described manifest, created).

    Idempotent: the same manifest again writes nothing. Updating needs the ownership scope (403).
    """
    owner = owner_in(acting)
    meta = manifest.metadata
    fields: dict[str, Any] = {
        "name": meta.name,
        **metadata_values(meta),
        "tags": meta.tags or [],
        **manifest.spec.connection.model_dump(by_alias=False),
    }
    model = MODELS[kind]
    statement = (
        select(model, ownership_scope(principal, model).label("writable"))
        .where(model.account_id == owner.account_id, model.name == meta.name)
        .options(*read_options(kind))
    )
    row = (await session.execute(statement)).unique().first()
    if row is None:
        connection = await insert_connection(session, principal, kind, owner, fields, where="spec")
    else:
        connection, writable = row
        require(bool(writable), FORBIDDEN)
        await change_connection(session, principal, kind, connection, fields, where="spec")
    return await describe_found(session, kind, await reload(session, kind, connection.id)), row is None
