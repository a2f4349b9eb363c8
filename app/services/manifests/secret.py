"""The `Secret` kind of the manifest API; every rule lives in `app.services.secrets` (`manifests`).

describe shows the value as the mask `********`; applying the mask keeps the stored value.
"""

from __future__ import annotations

from typing import Any, ClassVar

from app.schemas.manifests.secret import KIND, SecretManifest, SecretManifestRead
from app.schemas.manifests.secret import example_manifest as secret_example
from app.services.manifests import registry
from app.services.manifests.base import ApplyResult, Broker, BrokerContext, Column
from app.services.secrets import manifests as secrets


class SecretBroker(Broker[SecretManifest]):
    kind: ClassVar[str] = KIND
    plural: ClassVar[str] = "Secrets"
    manifest_model = SecretManifest
    columns: ClassVar[tuple[Column, ...]] = (
        Column("name", "CharField"),
        Column("description", "TextField"),
        Column("version", "CharField"),
        Column("username", "CharField"),
        Column("accountNumber", "CharField"),
        Column("expiresAt", "DateTimeField"),
        Column("lastAccessed", "DateTimeField"),
        Column("createdAt", "DateTimeField"),
        Column("updatedAt", "DateTimeField"),
    )

    async def apply(self, ctx: BrokerContext, manifest: SecretManifest) -> ApplyResult:
        described, created = await secrets.apply_manifest(
            ctx.session, ctx.cipher, ctx.principal, manifest, acting=ctx.acting
        )
        return ApplyResult(name=manifest.metadata.name, created=created, data=_dump(described))

    async def describe(self, ctx: BrokerContext, name: str) -> dict[str, Any]:
        return _dump(await secrets.describe_by_name(ctx.session, ctx.principal, name=name, acting=ctx.acting))

    async def get(self, ctx: BrokerContext, name: str | None) -> list[dict[str, Any]]:
        return await secrets.manifest_rows(ctx.session, ctx.principal, name=name)

    async def delete(self, ctx: BrokerContext, name: str) -> None:
        await secrets.delete_by_name(ctx.session, ctx.principal, name=name, acting=ctx.acting)

    def example_manifest(self) -> dict[str, Any]:
        return secret_example()


def _dump(manifest: SecretManifestRead) -> dict[str, Any]:
    return manifest.model_dump(mode="json", by_alias=True)


registry.register(SecretBroker())
