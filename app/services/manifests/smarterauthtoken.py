"""The `SmarterAuthToken` kind (API keys) of the manifest API; every rule lives in `app.services.api_keys`.

Applying a new name creates a real key and returns its plaintext once, in `data.key`; applying again
updates the key's metadata and `isActive` and never shows a key. deploy activates, undeploy deactivates.
"""

from __future__ import annotations

from typing import Any, ClassVar

from app.schemas.manifests.smarterauthtoken import KIND, SmarterAuthTokenManifest, SmarterAuthTokenManifestRead
from app.schemas.manifests.smarterauthtoken import example_manifest as auth_token_example
from app.services import api_keys
from app.services.manifests import registry
from app.services.manifests.base import ApplyResult, Broker, BrokerContext, Column


class SmarterAuthTokenBroker(Broker[SmarterAuthTokenManifest]):
    kind: ClassVar[str] = KIND
    plural: ClassVar[str] = "SmarterAuthTokens"
    manifest_model = SmarterAuthTokenManifest
    deployable: ClassVar[bool] = True
    # The original's columns: no digest, no identifier.
    columns: ClassVar[tuple[Column, ...]] = (
        Column("keyId", "UUIDField"),
        Column("name", "CharField"),
        Column("description", "TextField"),
        Column("isActive", "BooleanField"),
        Column("lastUsedAt", "DateTimeField"),
        Column("createdAt", "DateTimeField"),
        Column("updatedAt", "DateTimeField"),
    )

    async def apply(self, ctx: BrokerContext, manifest: SmarterAuthTokenManifest) -> ApplyResult:
        described, plaintext = await api_keys.apply_manifest(ctx.session, ctx.principal, manifest, acting=ctx.acting)
        data = _dump(described)
        if plaintext is not None:
            data["key"] = plaintext
        return ApplyResult(name=manifest.metadata.name, created=plaintext is not None, data=data)

    async def describe(self, ctx: BrokerContext, name: str) -> dict[str, Any]:
        return _dump(await api_keys.describe_by_name(ctx.session, ctx.principal, name=name, acting=ctx.acting))

    async def get(self, ctx: BrokerContext, name: str | None) -> list[dict[str, Any]]:
        return await api_keys.manifest_rows(ctx.session, ctx.principal, name=name)

    async def delete(self, ctx: BrokerContext, name: str) -> None:
        await api_keys.delete_by_name(ctx.session, ctx.principal, name=name, acting=ctx.acting)

    async def deploy(self, ctx: BrokerContext, name: str) -> str:
        key = await api_keys.deploy_by_name(ctx.session, ctx.principal, name=name, acting=ctx.acting, active=True)
        return f"{KIND} {key.name} deployed successfully: the key is active"

    async def undeploy(self, ctx: BrokerContext, name: str) -> str:
        key = await api_keys.deploy_by_name(ctx.session, ctx.principal, name=name, acting=ctx.acting, active=False)
        return f"{KIND} {key.name} undeployed successfully: the key is deactivated"

    def example_manifest(self) -> dict[str, Any]:
        return auth_token_example()


def _dump(manifest: SmarterAuthTokenManifestRead) -> dict[str, Any]:
    return manifest.model_dump(mode="json", by_alias=True)


registry.register(SmarterAuthTokenBroker())
