"""The `User` kind of the manifest API; every rule lives in `app.services.users`.

`?name=` is the username. Deleting removes the user from the acting account; the user itself is
deleted only when that was their last account.
"""

from __future__ import annotations

from typing import Any, ClassVar

from app.schemas.manifests.user import UserManifest, UserManifestRead
from app.schemas.manifests.user import example_manifest as user_example
from app.services import users
from app.services.manifests import registry
from app.services.manifests.base import ApplyResult, Broker, BrokerContext, Column


class UserBroker(Broker[UserManifest]):
    kind: ClassVar[str] = "User"
    plural: ClassVar[str] = "Users"
    manifest_model = UserManifest
    columns: ClassVar[tuple[Column, ...]] = (
        Column("name", "CharField"),
        Column("username", "CharField"),
        Column("email", "EmailField"),
        Column("firstName", "CharField"),
        Column("lastName", "CharField"),
        Column("isActive", "BooleanField"),
        Column("isStaff", "BooleanField"),
        Column("isSuperuser", "BooleanField"),
        Column("createdAt", "DateTimeField"),
        Column("updatedAt", "DateTimeField"),
    )

    async def apply(self, ctx: BrokerContext, manifest: UserManifest) -> ApplyResult:
        described, created = await users.apply_manifest(ctx.session, ctx.principal, manifest, acting=ctx.acting)
        return ApplyResult(name=manifest.metadata.username, created=created, data=_dump(described))

    async def describe(self, ctx: BrokerContext, name: str) -> dict[str, Any]:
        return _dump(await users.describe_by_username(ctx.session, ctx.principal, username=name, acting=ctx.acting))

    async def get(self, ctx: BrokerContext, name: str | None) -> list[dict[str, Any]]:
        return await users.manifest_rows(ctx.session, ctx.principal, username=name, acting=ctx.acting)

    async def delete(self, ctx: BrokerContext, name: str) -> None:
        await users.delete_by_username(ctx.session, ctx.principal, username=name, acting=ctx.acting)

    def example_manifest(self) -> dict[str, Any]:
        return user_example()


def _dump(manifest: UserManifestRead) -> dict[str, Any]:
    return manifest.model_dump(mode="json", by_alias=True)


registry.register(UserBroker())
