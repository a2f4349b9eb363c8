"""The `SmarterAuthToken` manifest: apply, describe, the `get` table, delete and (un)deploy by name."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.models import KIND_API_KEY, ApiKey
from app.schemas.manifests.smarterauthtoken import (
    SmarterAuthTokenConfigRead,
    SmarterAuthTokenManifest,
    SmarterAuthTokenManifestRead,
    SmarterAuthTokenMetadataRead,
    SmarterAuthTokenSpecRead,
    SmarterAuthTokenStatusRead,
)
from app.services.api_keys.issuing import issue_key
from app.services.api_keys.rules import APPLY_NOT_STAFF, READ_OPTIONS
from app.services.api_keys.scopes import (
    key_owner,
    reload_key,
    remove_key,
    set_key_active,
    visible,
    writable_key,
    write_key,
)
from app.services.base import metadata_values, query_name
from app.services.permissions import (
    Acting,
    acting_required,
    get_scoped,
    require,
)
from app.services.principals import Principal
from app.text import iso_utc


def manifest_of(key: ApiKey) -> SmarterAuthTokenManifestRead:
    """`key` must be loaded with READ_OPTIONS."""
    return SmarterAuthTokenManifestRead(
        metadata=SmarterAuthTokenMetadataRead.model_validate(key),
        spec=SmarterAuthTokenSpecRead(
            config=SmarterAuthTokenConfigRead(is_active=key.is_active, username=key.user.username)
        ),
        status=SmarterAuthTokenStatusRead(
            record_locator=key.record_locator,
            created=key.created_at,
            modified=key.updated_at,
            last_used_at=key.last_used_at,
        ),
    )


def _not_found_by_name(name: str) -> str:
    return f"No SmarterAuthToken named {name!r} is visible to you."


def _by_name(principal: Principal, name: str, acting: Acting | None) -> Select[ApiKey]:
    """The caller's key called `name` (names are unique per owner profile, not per account): the caller's
    own first, then one in the acting account, then the oldest.
    """
    normalised = query_name(name)
    preference: list[Any] = [(ApiKey.user_id == principal.user_id).desc()]
    if acting is not None:
        preference.append((ApiKey.account_id == acting.account_id).desc())
    return select(ApiKey).where(ApiKey.name == normalised, visible(principal)).order_by(*preference, ApiKey.id).limit(1)


async def apply_manifest(
    session: AsyncSession, principal: Principal, manifest: SmarterAuthTokenManifest, *, acting: Acting | None
) -> tuple[SmarterAuthTokenManifestRead, str | None]:
    """Create the key `metadata.name` of the named staff user of the acting account, or update it.

    Returns (manifest, plaintext): the plaintext of a new key, None when the key existed (applying again
    changes metadata and `isActive` only, and never shows a key again).
    """
    require(principal.is_staff or principal.is_superuser, APPLY_NOT_STAFF)
    meta, config = manifest.metadata, manifest.spec.config
    # A manifest acts in one account (`?accountNumber=` or the default): its owner profile is there.
    user, profile = await key_owner(session, principal, config.username, acting_required(acting), named=True)
    values: dict[str, Any] = {**metadata_values(meta), "is_active": config.is_active}
    statement = (
        select(ApiKey)
        .where(ApiKey.user_profile_id == profile.id, ApiKey.name == meta.name, ApiKey.kind == KIND_API_KEY)
        .options(selectinload(ApiKey.tag_links))
    )
    key = (await session.execute(statement)).scalar_one_or_none()
    plaintext: str | None = None
    if key is None:
        key, plaintext = await issue_key(
            session, user=user, profile=profile, name=meta.name, tags=meta.tags or [], **values
        )
    else:
        await write_key(session, key, {**values, "tags": meta.tags or []})
    return manifest_of(await reload_key(session, key.id)), plaintext


async def describe_by_name(
    session: AsyncSession, principal: Principal, *, name: str, acting: Acting | None
) -> SmarterAuthTokenManifestRead:
    statement = _by_name(principal, name, acting).options(*READ_OPTIONS)
    return manifest_of(await get_scoped(session, statement, not_found=_not_found_by_name(name)))


async def manifest_rows(session: AsyncSession, principal: Principal, *, name: str | None) -> list[dict[str, Any]]:
    """The `get` table (the original's columns; no digest, no identifier), newest first."""
    statement = (
        select(
            ApiKey.key_id,
            ApiKey.name,
            ApiKey.description,
            ApiKey.is_active,
            ApiKey.last_used_at,
            ApiKey.created_at,
            ApiKey.updated_at,
        )
        .where(visible(principal))
        .order_by(ApiKey.id.desc())
    )
    if name is not None:
        statement = statement.where(ApiKey.name == query_name(name))
    return [
        {
            "keyId": str(row.key_id),
            "name": row.name,
            "description": row.description,
            "isActive": row.is_active,
            "lastUsedAt": iso_utc(row.last_used_at) if row.last_used_at else None,
            "createdAt": iso_utc(row.created_at),
            "updatedAt": iso_utc(row.updated_at),
        }
        for row in (await session.execute(statement)).all()
    ]


async def delete_by_name(session: AsyncSession, principal: Principal, *, name: str, acting: Acting | None) -> None:
    key = await writable_key(session, principal, _by_name(principal, name, acting), _not_found_by_name(name))
    await remove_key(session, key)


async def deploy_by_name(
    session: AsyncSession, principal: Principal, *, name: str, acting: Acting | None, active: bool
) -> ApiKey:
    """deploy (active=True) / undeploy (False): activate or deactivate the named key."""
    key = await writable_key(session, principal, _by_name(principal, name, acting), _not_found_by_name(name))
    await set_key_active(session, key, active)
    return await reload_key(session, key.id)
