"""Creating, changing and deleting secrets (REST and manifests alike): the value is encrypted before it
reaches a row, the mask keeps a stored value, a used secret cannot be deleted (409 naming its users)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.errors import NotFound, Unprocessable
from app.models import Secret
from app.models.base import utcnow
from app.schemas.secrets import MASK, SecretCreate, SecretRead, SecretUpdate
from app.services import tags as tag_service
from app.services.base import assign, flush
from app.services.permissions import acting_account, owner_in
from app.services.principals import Membership, Principal
from app.services.secrets import reads, rules, usage
from app.services.secrets.cipher import SecretCipher, SecretUndecryptable


async def insert_secret(
    session: AsyncSession,
    cipher: SecretCipher,
    owner: Membership,
    *,
    name: str,
    value: str,
    description: str = "",
    version: str = "1.0.0",
    tags: list[str] | None = None,
    annotations: list[dict[str, Any]] | None = None,
    expires_at: datetime | None = None,
    value_field: str = "value",
    expiry_field: str = "expiresAt",
) -> Secret:
    """A new secret owned by `owner`; 409 when the account has one of this name (the constraint decides)."""
    if value == MASK:
        raise Unprocessable.field(value_field, rules.MASK_ON_CREATE)
    rules.check_expiry(expires_at, now=utcnow(), field=expiry_field)
    row = Secret(
        name=name,
        description=description,
        version=version,
        annotations=annotations or [],
        encrypted_value=cipher.encrypt(value),
        expires_at=expires_at,
        user_profile_id=owner.profile_id,
        account_id=owner.account_id,
    )
    await tag_service.add_tagged(session, row, tags)
    return row


def _same_value(cipher: SecretCipher, secret: Secret, value: str) -> bool:
    try:
        return cipher.decrypt(secret.encrypted_value) == value
    except SecretUndecryptable:
        return False  # a value no key opens any more: the new one replaces it


async def change_secret(
    session: AsyncSession,
    cipher: SecretCipher,
    secret: Secret,
    values: dict[str, Any],
    *,
    expiry_field: str = "expiresAt",
) -> bool:
    """Set what differs (`secret.tag_links` loaded): `value` (plaintext; the mask or the stored value itself
    change nothing), `tags` as names, `expires_at` (a new one must be in the future), metadata. True when
    something changed."""
    values = dict(values)
    value = values.pop("value", None)
    tags = values.pop("tags", None)
    if "expires_at" in values and values["expires_at"] != secret.expires_at:
        rules.check_expiry(values["expires_at"], now=utcnow(), field=expiry_field)
    changed = assign(secret, values)
    if value is not None and value != MASK and not _same_value(cipher, secret, value):
        secret.encrypted_value = cipher.encrypt(value)
        changed = True
    if tags is not None and sorted(tags) != sorted(secret.tags):
        await tag_service.set_tags(session, secret, tags)
        changed = True
    if changed:
        await flush(session)
    return changed


async def remove_secret(session: AsyncSession, secret: Secret) -> None:
    """Delete `secret` (loaded FOR UPDATE: a connection that starts using it meanwhile waits) unless
    connections use it (409 naming them). Its tag links cascade."""
    users = await usage.connections_using(session, secret.id)
    if users:
        raise rules.in_use(secret.name, users)
    await session.execute(delete(Secret).where(Secret.id == secret.id))
    session.expunge(secret)


# --- REST ---------------------------------------------------------------------------------------------------


async def _owned(session: AsyncSession, principal: Principal, ref: str, *, lock: bool = False) -> Secret:
    statement = select(Secret).where(reads.by_ref(ref), rules.visible(principal))
    statement = statement.with_for_update() if lock else statement.options(selectinload(Secret.tag_links))
    secret = (await session.execute(statement)).scalar_one_or_none()
    if secret is None:
        raise NotFound(rules.NOT_FOUND)
    return secret


async def create_secret(
    session: AsyncSession, cipher: SecretCipher, principal: Principal, data: SecretCreate
) -> SecretRead:
    """A secret owned by the caller's profile in their acting account (or the body's `accountNumber`)."""
    owner = owner_in(await acting_account(session, principal, data.account_number, where="body"))
    row = await insert_secret(
        session,
        cipher,
        owner,
        name=data.name,
        value=data.value,
        description=data.description,
        version=data.version,
        tags=data.tags,
        annotations=data.annotations,
        expires_at=data.expires_at,
    )
    return await reads.read_one(session, row.id)


async def update_secret(
    session: AsyncSession, cipher: SecretCipher, principal: Principal, ref: str, data: SecretUpdate
) -> SecretRead:
    secret = await _owned(session, principal, ref)
    await change_secret(session, cipher, secret, data.model_dump(exclude_unset=True, by_alias=False))
    return await reads.read_one(session, secret.id)


async def delete_secret(session: AsyncSession, principal: Principal, ref: str) -> None:
    await remove_secret(session, await _owned(session, principal, ref, lock=True))
