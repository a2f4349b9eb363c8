"""The plugin kinds of the manifest API: `Plugin` (static), `SqlPlugin` and `ApiPlugin`; every rule lives in
`app.services.plugins.manifests` and `app.services.plugins.connected`."""

from __future__ import annotations

from typing import Any, ClassVar

from app.schemas.manifests.plugin import (
    ApiPluginManifest,
    PluginManifest,
    SqlPluginManifest,
    api_example_manifest,
    sql_example_manifest,
)
from app.schemas.manifests.plugin import example_manifest as plugin_example
from app.services.manifests import registry
from app.services.manifests.base import ApplyResult, Broker, BrokerContext, Column
from app.services.plugins import connected
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

    async def get_json(self, ctx: BrokerContext, name: str | None) -> list[bytes]:
        return await plugins.manifest_rows_json(ctx.reader, ctx.caches, ctx.principal, name=name)

    async def delete(self, ctx: BrokerContext, name: str) -> None:
        await plugins.delete_by_name(ctx.session, ctx.principal, name=name, acting=ctx.acting)

    def example_manifest(self) -> dict[str, Any]:
        return plugin_example()


registry.register(PluginBroker())


class _ConnectedPluginBroker(Broker[Any]):
    """`SqlPlugin` and `ApiPlugin`: the `Plugin` kind's verbs for the plugins of one class."""

    plugin_class: ClassVar[str]
    columns: ClassVar[tuple[Column, ...]] = PluginBroker.columns

    async def apply(self, ctx: BrokerContext, manifest: Any) -> ApplyResult:
        described, created = await connected.apply_connected_manifest(
            ctx.session, ctx.principal, manifest, acting=ctx.acting
        )
        return ApplyResult(name=manifest.metadata.name, created=created, data=manifest_json(described))

    async def describe(self, ctx: BrokerContext, name: str) -> dict[str, Any]:
        view = await plugins.describe_by_name(
            ctx.session, ctx.principal, name=name, acting=ctx.acting, plugin_class=self.plugin_class
        )
        return manifest_json(view)

    async def get(self, ctx: BrokerContext, name: str | None) -> list[dict[str, Any]]:
        return await plugins.manifest_rows(
            ctx.reader, ctx.caches, ctx.principal, name=name, plugin_class=self.plugin_class
        )

    async def get_json(self, ctx: BrokerContext, name: str | None) -> list[bytes]:
        return await plugins.manifest_rows_json(
            ctx.reader, ctx.caches, ctx.principal, name=name, plugin_class=self.plugin_class
        )

    async def delete(self, ctx: BrokerContext, name: str) -> None:
        await plugins.delete_by_name(
            ctx.session, ctx.principal, name=name, acting=ctx.acting, plugin_class=self.plugin_class
        )


class SqlPluginBroker(_ConnectedPluginBroker):
    kind: ClassVar[str] = "SqlPlugin"
    plural: ClassVar[str] = "SqlPlugins"
    manifest_model = SqlPluginManifest
    plugin_class: ClassVar[str] = "sql"

    def example_manifest(self) -> dict[str, Any]:
        return sql_example_manifest()


class ApiPluginBroker(_ConnectedPluginBroker):
    kind: ClassVar[str] = "ApiPlugin"
    plural: ClassVar[str] = "ApiPlugins"
    manifest_model = ApiPluginManifest
    plugin_class: ClassVar[str] = "api"

    def example_manifest(self) -> dict[str, Any]:
        return api_example_manifest()


registry.register(SqlPluginBroker())
registry.register(ApiPluginBroker())
