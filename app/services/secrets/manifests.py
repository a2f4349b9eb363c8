"""The `Secret` manifest kind: apply (create or update; the mask keeps the stored value), describe (the value
masked, the connections that use it as `dependencies`), the `get` table and delete by name.

A manifest acts in one account (`?accountNumber=` or the caller's first): apply finds or creates the secret
of that name there; describe and delete find the caller's secret of that name in the ownership scope, the
acting account's first. Another tenant's secret is 404, whatever its name.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.errors import NotFound
from app.models import Account, Secret, User
from app.schemas.manifests.base import SAMDependency
from app.schemas.manifests.secret import (
    SecretConfigRead,
    SecretManifest,
    SecretManifestRead,
    SecretMetadataRead,
    SecretSpecRead,
    SecretStatusRead,
)
from app.services.base import metadata_values, query_name
from app.services.permissions import Acting, owner_in
from app.services.principals import Principal
from app.services.secrets import reads, rules, usage
from app.services.secrets.cipher import SecretCipher
from app.services.secrets.writes import change_secret, insert_secret, remove_secret
from app.text import iso_utc

_VALUE_FIELD = "spec.config.value"
_EXPIRY_FIELD = "spec.config.expiration_date"


def _by_name(principal: Principal, name: str, acting: Acting | None) -> Select[Secret]:
    """The caller's secret called `name` (unique per account): the acting account's first, then the oldest."""
    statement = select(Secret).where(Secret.name == query_name(name), rules.visible(principal))
    if acting is not None:
        statement = statement.order_by((Secret.account_id == acting.account_id).desc())
    return statement.order_by(Secret.id).limit(1)


async def _found(session: AsyncSession, statement: Select[Secret], name: str) -> Secret:
    secret = (await session.execute(statement)).scalar_one_or_none()
    if secret is None:
        raise NotFound(rules.not_found_by_name(name))
    return secret


async def _described(session: AsyncSession, secret_id: int) -> SecretManifestRead:
    statement = (
        reads.with_owner(Secret, User.username, Account.account_number)
        .where(Secret.id == secret_id)
        .options(selectinload(Secret.tag_links))
        .execution_options(populate_existing=True)
    )
    secret, username, account_number = (await session.execute(statement)).one()
    dependencies = [
        SAMDependency(kind=kind, name=name) for kind, name in await usage.connections_using(session, secret_id)
    ]
    return SecretManifestRead(
        metadata=SecretMetadataRead.model_validate(secret),
        spec=SecretSpecRead(config=SecretConfigRead(expiration_date=secret.expires_at)),
        status=SecretStatusRead(
            account_number=account_number,
            username=username,
            record_locator=secret.record_locator,
            created=secret.created_at,
            modified=secret.updated_at,
            last_accessed=secret.last_accessed,
            dependencies=dependencies,
        ),
    )


async def apply_manifest(
    session: AsyncSession,
    cipher: SecretCipher,
    principal: Principal,
    manifest: SecretManifest,
    *,
    acting: Acting | None,
) -> tuple[SecretManifestRead, bool]:
    """Create the secret `metadata.name` in the acting account (owned by the caller's profile there), or
    update the caller's secret of that name. Returns (the described manifest, whether it was created)."""
    owner = owner_in(acting)
    meta, config = manifest.metadata, manifest.spec.config
    values: dict[str, Any] = {**metadata_values(meta), "expires_at": config.expiration_date}
    statement = (
        select(Secret)
        .where(Secret.account_id == owner.account_id, Secret.name == meta.name, rules.visible(principal))
        .options(selectinload(Secret.tag_links))
    )
    secret = (await session.execute(statement)).scalar_one_or_none()
    if secret is None:
        secret = await insert_secret(
            session,
            cipher,
            owner,
            name=meta.name,
            value=config.value,
            tags=meta.tags or [],
            value_field=_VALUE_FIELD,
            expiry_field=_EXPIRY_FIELD,
            **values,
        )
        return await _described(session, secret.id), True
    changes = {**values, "value": config.value, "tags": meta.tags or []}
    await change_secret(session, cipher, secret, changes, expiry_field=_EXPIRY_FIELD)
    return await _described(session, secret.id), False


async def describe_by_name(
    session: AsyncSession, principal: Principal, *, name: str, acting: Acting | None
) -> SecretManifestRead:
    secret = await _found(session, _by_name(principal, name, acting), name)
    return await _described(session, secret.id)


async def delete_by_name(session: AsyncSession, principal: Principal, *, name: str, acting: Acting | None) -> None:
    """404 outside the ownership scope; 409 while connections use it."""
    await remove_secret(session, await _found(session, _by_name(principal, name, acting).with_for_update(), name))


async def manifest_rows(session: AsyncSession, principal: Principal, *, name: str | None) -> list[dict[str, Any]]:
    """The `get` table: the caller's secrets (ownership scope), newest first; never a value."""
    statement = (
        reads.with_owner(
            Secret.name,
            Secret.description,
            Secret.version,
            Secret.expires_at,
            Secret.last_accessed,
            Secret.created_at,
            Secret.updated_at,
            User.username,
            Account.account_number,
        )
        .where(rules.visible(principal))
        .order_by(Secret.id.desc())
    )
    if name is not None:
        statement = statement.where(Secret.name == query_name(name))

    def when(value: Any) -> str | None:
        return iso_utc(value) if value is not None else None

    return [
        {
            "name": row.name,
            "description": row.description,
            "version": row.version,
            "username": row.username,
            "accountNumber": row.account_number,
            "expiresAt": when(row.expires_at),
            "lastAccessed": when(row.last_accessed),
            "createdAt": when(row.created_at),
            "updatedAt": when(row.updated_at),
        }
        for row in (await session.execute(statement)).all()
    ]
