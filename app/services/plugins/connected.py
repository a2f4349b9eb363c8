"""SQL and API plugins: `PUT {id}/data/` of every class, and the `SqlPlugin`/`ApiPlugin` manifests' apply.

Their reads (describe, delete, the `get` table) are `app.services.plugins.manifests`' with the class given.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, Unprocessable, field_errors
from app.schemas.manifests.plugin import ApiPluginManifest, SqlPluginManifest, SqlPluginSpec
from app.schemas.plugin_data import ApiDataPut, ApiDataRead, SqlDataPut, SqlDataRead
from app.schemas.plugins import DataPut, DataRead
from app.services.permissions import Acting, owner_in
from app.services.plugins.connection_refs import class_data_values
from app.services.plugins.manifests import manifest_values, named_with_rights, update_applied, write_part
from app.services.plugins.statements import DATA_PARTS
from app.services.plugins.views import PluginView, part_body
from app.services.plugins.writes import (
    get_owned,
    insert_plugin,
    reloaded_view,
    write_data,
)
from app.services.principals import Principal

_DATA_INPUTS: dict[str, type[BaseModel]] = {"static": DataPut, "sql": SqlDataPut, "api": ApiDataPut}


def _validated(model: type[BaseModel], body: Any) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise Unprocessable(
            "The data is not valid for this plugin's class.", errors=field_errors(exc.errors(), prefix=("body",))
        ) from None


async def write_class_data(
    session: AsyncSession, principal: Principal, plugin_id: int, body: Any
) -> DataRead | SqlDataRead | ApiDataRead:
    """`PUT {id}/data/`: the data of the plugin's class (static data, SQL data or API data), replaced as a whole.

    Ownership scope first (404/403 before the body is judged), then the body against the class's shape.
    """
    plugin = await get_owned(session, principal, plugin_id)
    data = _validated(_DATA_INPUTS[plugin.plugin_class], body)
    if isinstance(data, DataPut):
        return await write_data(session, principal, plugin.id, data)
    values = await class_data_values(session, plugin.account_id, plugin.plugin_class, data.connection, data)
    part = DATA_PARTS[plugin.plugin_class]
    view = await reloaded_view(session, plugin.id)
    if await write_part(session, plugin.id, part, getattr(view, part), values):
        view = await reloaded_view(session, plugin.id)
    row = getattr(view, part)
    read = SqlDataRead if plugin.plugin_class == "sql" else ApiDataRead
    return read.model_validate_json(part_body(part, row))


async def apply_connected_manifest(
    session: AsyncSession,
    principal: Principal,
    manifest: SqlPluginManifest | ApiPluginManifest,
    *,
    acting: Acting | None,
) -> tuple[PluginView, bool]:
    """Create or update the SQL or API plugin `metadata.name` of the acting account; (manifest, created).

    The connection is resolved in that account (422 naming `spec.connection` otherwise). Idempotent: the
    same manifest again writes nothing. Updating needs the ownership scope.
    """
    owner = owner_in(acting)
    plugin_class = manifest.metadata.plugin_class
    spec = manifest.spec
    class_data = spec.sql_data if isinstance(spec, SqlPluginSpec) else spec.api_data
    plugin, parts = manifest_values(manifest)
    try:
        values = await class_data_values(session, owner.account_id, plugin_class, spec.connection, class_data)
    except Unprocessable as exc:
        for error in exc.errors or []:
            error.loc = ["body", "spec", "connection"]
        raise
    parts[DATA_PARTS[plugin_class]] = values
    tags = manifest.metadata.tags or []
    name = manifest.metadata.name
    row = await named_with_rights(session, principal, owner.account_id, name)
    if row is None:
        created = await insert_plugin(
            session,
            owner,
            name=name,
            description=plugin["description"],
            version=plugin["version"],
            tags=tags,
            annotations=plugin["annotations"],
            plugin_class=plugin_class,
            prompt=parts["prompt"],
            selector=parts["selector"],
            data=values,
        )
        if created is None:  # only an `if_absent` insert finds the name taken without raising
            raise Conflict(f"A plugin named {name!r} was just created in this account.")
        return created, True
    return await update_applied(session, row, manifest.kind, plugin_class, plugin, tags, parts), False
