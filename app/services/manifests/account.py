"""The `Account` kind of the manifest API; every rule lives in `app.services.accounts`.

Apply and delete are for superusers; describe and get show what the REST API shows (members read their
own accounts). Accounts cannot be deployed (the base class's 400).
"""

from __future__ import annotations

from typing import Any, ClassVar

from app.schemas.manifests.account import KIND, AccountManifest, AccountManifestRead
from app.schemas.manifests.account import example_manifest as account_example
from app.services import accounts
from app.services.manifests import registry
from app.services.manifests.base import ApplyResult, Broker, BrokerContext, Column


class AccountBroker(Broker[AccountManifest]):
    kind: ClassVar[str] = KIND
    plural: ClassVar[str] = "Accounts"
    manifest_model = AccountManifest
    columns: ClassVar[tuple[Column, ...]] = (
        Column("name", "CharField"),
        Column("accountNumber", "CharField"),
        Column("companyName", "CharField"),
        Column("isDefaultAccount", "BooleanField"),
        Column("isActive", "BooleanField"),
        Column("createdAt", "DateTimeField"),
        Column("updatedAt", "DateTimeField"),
    )

    async def apply(self, ctx: BrokerContext, manifest: AccountManifest) -> ApplyResult:
        described, created = await accounts.apply_manifest(ctx.session, ctx.principal, manifest)
        return ApplyResult(name=manifest.metadata.name, created=created, data=_dump(described))

    async def describe(self, ctx: BrokerContext, name: str) -> dict[str, Any]:
        return _dump(await accounts.describe_by_name(ctx.session, ctx.principal, name=name))

    async def get(self, ctx: BrokerContext, name: str | None) -> list[dict[str, Any]]:
        return await accounts.manifest_rows(ctx.session, ctx.principal, name=name)

    async def delete(self, ctx: BrokerContext, name: str) -> None:
        await accounts.delete_by_name(ctx.session, ctx.principal, name=name)

    def example_manifest(self) -> dict[str, Any]:
        return account_example()


def _dump(manifest: AccountManifestRead) -> dict[str, Any]:
    return manifest.model_dump(mode="json", by_alias=True)


registry.register(AccountBroker())
