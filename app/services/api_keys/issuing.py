"""Issuing and revoking keys (plaintext only in the return value): bootstrap, the CLI, login and tests use these."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Unprocessable
from app.models import KIND_API_KEY, KIND_LOGIN, ApiKey, User, UserProfile
from app.models.base import utcnow
from app.services import keys
from app.services import tags as tag_service
from app.services.api_keys.rules import EXPIRY_IN_PAST, STAFF_ONLY


def check_expiry(expires_at: datetime | None) -> None:
    if expires_at is not None and expires_at <= utcnow():
        raise Unprocessable.field("expiresAt", EXPIRY_IN_PAST)


async def issue_key(
    session: AsyncSession,
    *,
    user: User,
    profile: UserProfile | None,
    name: str,
    kind: str = KIND_API_KEY,
    description: str = "",
    version: str = "1.0.0",
    tags: list[str] | None = None,
    annotations: list[dict[str, Any]] | None = None,
    expires_at: datetime | None = None,
    is_active: bool = True,
    prefix_length: int = keys.KNOX_TOKEN_KEY_LENGTH,
) -> tuple[ApiKey, str]:
    """Create a key for `user`, owned by `profile`; returns (row, plaintext). 409 on a duplicate name."""
    if kind == KIND_API_KEY and not user.is_staff:
        raise Unprocessable.field("username", STAFF_ONLY)
    if kind == KIND_API_KEY and profile is None:
        raise Unprocessable.field("username", "The key's user has no profile in this account.")
    if profile is not None and profile.user_id != user.id:
        raise Unprocessable.field("username", "The owner profile must belong to the key's user.")
    check_expiry(expires_at)
    plaintext = keys.generate_key()
    row = ApiKey(
        token_key=keys.token_key_of(plaintext, prefix_length),
        digest=keys.digest_of(plaintext),
        kind=kind,
        user_id=user.id,
        user_profile_id=profile.id if profile else None,
        account_id=profile.account_id if profile else None,
        name=name,
        description=description,
        version=version,
        annotations=annotations or [],
        expires_at=expires_at,
        is_active=is_active,
    )
    await tag_service.add_tagged(session, row, tags)
    return row, plaintext


async def issue_login_token(session: AsyncSession, user: User, ttl_seconds: int) -> tuple[ApiKey, str]:
    """A login token (any active user), owned by the user's first profile if they have one."""
    profile = (
        (await session.execute(select(UserProfile).where(UserProfile.user_id == user.id).order_by(UserProfile.id)))
        .scalars()
        .first()
    )
    # Expired login tokens of this user are garbage; the login path is the cheap place to collect them.
    await session.execute(
        delete(ApiKey)
        .where(ApiKey.user_id == user.id, ApiKey.kind == KIND_LOGIN, ApiKey.expires_at <= utcnow())
        .returning(ApiKey.digest)
    )
    return await issue_key(
        session,
        user=user,
        profile=profile,
        name=f"login_{uuid.uuid4().hex[:16]}",
        kind=KIND_LOGIN,
        description="Login token",
        expires_at=utcnow() + timedelta(seconds=ttl_seconds),
    )


async def revoke_login_tokens(session: AsyncSession, user_id: int) -> int:
    """Delete all of a user's login tokens (named API keys are untouched)."""
    rows = (
        (
            await session.execute(
                delete(ApiKey).where(ApiKey.user_id == user_id, ApiKey.kind == KIND_LOGIN).returning(ApiKey.digest)
            )
        )
        .scalars()
        .all()
    )
    return len(rows)
