"""Which keys a caller sees and may change, the lookups by reference, and the writes every path shares."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, exists, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound, Unprocessable
from app.models import KIND_API_KEY, ApiKey, User, UserProfile
from app.models.base import utcnow
from app.services import tags as tag_service
from app.services.api_keys.rules import NOT_FOUND, READ_OPTIONS, STAFF_ONLY, SUPERUSER_KEYS
from app.services.base import flush, path_id
from app.services.permissions import (
    Acting,
    get_scoped,
    ownership_scope,
    require,
    user_rights,
    user_rights_statement,
    user_scope,
)
from app.services.principals import Principal


def visible(principal: Principal) -> ColumnElement[bool]:
    """Named keys in the caller's ownership scope (keys are sensitive: no wider read scope)."""
    return and_(ApiKey.kind == KIND_API_KEY, ownership_scope(principal, ApiKey))


def writable(principal: Principal) -> ColumnElement[bool]:
    """Within `visible`: everything for a superuser; for others, keys whose user is not a superuser."""
    if principal.is_superuser:
        return true()
    return ~exists().where(User.id == ApiKey.user_id, User.is_superuser)


def _by_ref(value: str) -> ColumnElement[bool]:
    """A path `{id}`: the key's UUID (`keyId`), its integer id or its hashedId."""
    if len(value) in (32, 36):
        try:
            return ApiKey.key_id == uuid.UUID(value)
        except ValueError:
            pass  # e.g. a 32-character hashed id
    return ApiKey.id == path_id(value, not_found=NOT_FOUND)


async def reload_key(session: AsyncSession, key_id: int) -> ApiKey:
    statement = (
        select(ApiKey).where(ApiKey.id == key_id).options(*READ_OPTIONS).execution_options(populate_existing=True)
    )
    return (await session.execute(statement)).unique().scalar_one()


async def writable_key(
    session: AsyncSession, principal: Principal, statement: Select[ApiKey], not_found: str
) -> ApiKey:
    """404 outside the ownership scope, 403 for a superuser's key (unless the caller is one)."""
    return await get_scoped(
        session, statement, write_scope=writable(principal), not_found=not_found, forbidden=SUPERUSER_KEYS
    )


def ref_statement(principal: Principal, ref: str) -> Select[ApiKey]:
    return select(ApiKey).where(_by_ref(ref), visible(principal))


async def key_owner(
    session: AsyncSession, principal: Principal, username: str, acting: Acting, *, named: bool
) -> tuple[User, UserProfile]:
    """The user a new (or re-applied) key is for, and the profile that owns it.

    The owner profile is the user's in the acting account; for a superuser who named no account, else the
    user's only profile (several and none in the acting account: 422 asking for `accountNumber`).
    404 when the caller cannot see the user; 403 unless the caller may manage them
    (`permissions.user_manage_scope`) or they are the caller; 422 for a non-staff user.
    """
    # FOR SHARE: a concurrent demotion waits for this unit of work, so the key's user is staff when it is made.
    statement = (
        user_rights_statement(principal)
        .where(User.username == username, user_scope(principal))
        .with_for_update(read=True, of=User)
    )
    found = await user_rights(session, statement)
    if found is None:
        raise NotFound(f"No user named {username!r} is visible to you.")
    user = found.user
    if user.id != principal.user_id:
        require(principal.is_superuser or not user.is_superuser, SUPERUSER_KEYS)
        found.require_manageable(principal)
    if not user.is_staff:
        raise Unprocessable.field("username", STAFF_ONLY)
    owned = (await session.execute(select(UserProfile).where(UserProfile.user_id == user.id))).scalars().all()
    profile = next((p for p in owned if p.account_id == acting.account_id), None)
    if profile is None and principal.is_superuser and not named and len(owned) == 1:
        profile = owned[0]
    if profile is None:
        message = f"{username} has no profile in account {acting.account_number}; "
        if principal.is_superuser and not named and owned:
            message += "they belong to several accounts: name one with accountNumber."
        else:
            message += "add them to the account first."
        raise Unprocessable.field("username", message)
    return user, profile


async def write_key(session: AsyncSession, key: ApiKey, values: dict[str, Any]) -> bool:
    """Set what differs (`tags` as names; `key.tag_links` loaded) and flush; True when something changed."""
    changed = await tag_service.assign_tagged(session, key, values)
    if changed:
        await flush(session)
    return changed


async def set_key_active(session: AsyncSession, key: ApiKey, active: bool | None) -> None:
    """A targeted UPDATE of the flag alone (None: toggle, atomically in SQL); never a full-row write."""
    statement = update(ApiKey).where(ApiKey.id == key.id)
    if active is not None:
        statement = statement.where(ApiKey.is_active != active)  # already so: keep updated_at
    value: Any = ~ApiKey.is_active if active is None else active
    await session.execute(
        statement.values(is_active=value, updated_at=utcnow())
        .returning(ApiKey.digest)
        .execution_options(synchronize_session=False)
    )


async def remove_key(session: AsyncSession, key: ApiKey) -> None:
    # The tag links cascade (ON DELETE CASCADE).
    await session.execute(delete(ApiKey).where(ApiKey.id == key.id).returning(ApiKey.digest))
    session.expunge(key)
