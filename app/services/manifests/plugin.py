"""The `Plugin` kind (static plugins) of the manifest API; every rule lives in `app.services.plugins.manifests`."""

from __future__ import annotations

from typing import Any, ClassVar

from app.schemas.manifests.plugin import PluginManifest
from app.schemas.manifests.plugin import example_manifest as plugin_example
from app.services.manifests import registry
from app.services.manifests.base import ApplyResult, Broker, BrokerContext, Column
from app.services.plugins import manifests as plugins
from app.services.plugins.views import manifest_json


class PluginBroker(Broker[PluginManifest]):
    kind: ClassVar[str] = "Plugin"
    plural: ClassVar[str] = "Plugins"
    manifest_model = PluginManifest
    columns: ClassVar[tuple[Column, ...]] = (
        Column("name", "CharField"),
        Column("description", "TextField"),
        Column("pluginClass", "ChoiceField"),
        Column("version", "CharField"),
        Column("email", "EmailField"),
        Column("username", "CharField"),
        Column("accountNumber", "CharField"),
        Column("createdAt", "DateTimeField"),
        Column("updatedAt", "DateTimeField"),
    )

    async def apply(self, ctx: BrokerContext, manifest: PluginManifest) -> ApplyResult:
        applied, created = await plugins.apply_manifest(ctx.session, ctx.principal, manifest, acting=ctx.acting)
        return ApplyResult(name=manifest.metadata.name, created=created, data=manifest_json(applied))

    async def describe(self, ctx: BrokerContext, name: str) -> dict[str, Any]:
        return manifest_json(await plugins.describe_by_name(ctx.session, ctx.principal, name=name, acting=ctx.acting))

    async def get(self, ctx: BrokerContext, name: str | None) -> list[dict[str, Any]]:
        return await plugins.manifest_rows(ctx.reader, ctx.caches, ctx.principal, name=name)

    async def delete(self, ctx: BrokerContext, name: str) -> None:
        await plugins.delete_by_name(ctx.session, ctx.principal, name=name, acting=ctx.acting)

    def example_manifest(self) -> dict[str, Any]:
        return plugin_example()


registry.register(PluginBroker())
