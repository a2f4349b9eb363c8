"""The `SqlConnection` and `ApiConnection` kinds of the manifest API; every rule lives in
`app.services.connections` (`manifests` there)."""

from __future__ import annotations

from typing import Any, ClassVar

from app.schemas.manifests.connection import ApiConnectionManifest, SqlConnectionManifest, api_example, sql_example
from app.services.connections import manifests as connections
from app.services.connections.rules import Kind
from app.services.manifests import registry
from app.services.manifests.base import ApplyResult, Broker, BrokerContext, Column

_COMMON = (
    Column("name", "CharField"),
    Column("description", "TextField"),
    Column("version", "CharField"),
    Column("username", "CharField"),
    Column("accountNumber", "CharField"),
    Column("createdAt", "DateTimeField"),
    Column("updatedAt", "DateTimeField"),
)


class _ConnectionBroker(Broker[Any]):
    connection_kind: ClassVar[Kind]

    async def apply(self, ctx: BrokerContext, manifest: Any) -> ApplyResult:
        described, created = await connections.apply_manifest(
            ctx.session, ctx.principal, self.connection_kind, manifest, acting=ctx.acting
        )
        return ApplyResult(name=manifest.metadata.name, created=created, data=described)

    async def describe(self, ctx: BrokerContext, name: str) -> dict[str, Any]:
        return await connections.describe_by_name(
            ctx.session, ctx.principal, self.connection_kind, name=name, acting=ctx.acting
        )

    async def get(self, ctx: BrokerContext, name: str | None) -> list[dict[str, Any]]:
        return await connections.manifest_rows(ctx.session, ctx.principal, self.connection_kind, name=name)

    async def delete(self, ctx: BrokerContext, name: str) -> None:
        await connections.delete_by_name(
            ctx.session, ctx.principal, self.connection_kind, name=name, acting=ctx.acting, pools=ctx.pools
        )


class SqlConnectionBroker(_ConnectionBroker):
    kind: ClassVar[str] = "SqlConnection"
    plural: ClassVar[str] = "SqlConnections"
    manifest_model = SqlConnectionManifest
    connection_kind: ClassVar[Kind] = "sql"
    columns: ClassVar[tuple[Column, ...]] = (
        *_COMMON[:3],
        Column("dbEngine", "CharField"),
        Column("hostname", "CharField"),
        Column("database", "CharField"),
        *_COMMON[3:],
    )

    def example_manifest(self) -> dict[str, Any]:
        return sql_example()


class ApiConnectionBroker(_ConnectionBroker):
    kind: ClassVar[str] = "ApiConnection"
    plural: ClassVar[str] = "ApiConnections"
    manifest_model = ApiConnectionManifest
    connection_kind: ClassVar[Kind] = "api"
    columns: ClassVar[tuple[Column, ...]] = (
        *_COMMON[:3],
        Column("baseUrl", "URLField"),
        Column("authMethod", "CharField"),
        *_COMMON[3:],
    )

    def example_manifest(self) -> dict[str, Any]:
        return api_example()


registry.register(SqlConnectionBroker())
registry.register(ApiConnectionBroker())
