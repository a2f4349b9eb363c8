"""Logging in with a password, and logging out (revoking the presented credential)."""

from __future__ import annotations

import logging

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import TooManyRequests, Unauthorized
from app.models import KIND_LOGIN, ApiKey, User
from app.models.base import utcnow
from app.services import api_keys, passwords
from app.services.login_throttle import MAX_FAILURES, WINDOW, LoginThrottle
from app.services.principals import Principal

logger = logging.getLogger(__name__)

BAD_CREDENTIALS = "Invalid username or password."
BASIC_CHALLENGE = 'Basic realm="smarter"'
USERNAME_MAX_LENGTH = 150
WINDOW_MINUTES = int(WINDOW.total_seconds() // 60)
THROTTLED = f"Too many failed logins for this username ({MAX_FAILURES}): try again in {{minutes}} minutes at most."


def _throttled() -> None:
    logger.warning("A login was refused: too many failed attempts for its username.")


async def login(
    session: AsyncSession, username: str, password: str, ttl_seconds: int, throttle: LoginThrottle
) -> tuple[ApiKey, str, User]:
    """A login token for valid credentials of an active user; the same 401 for every failure.

    A username with too many recent failures gets 429 whatever the password, before any hashing.
    """
    wait = await throttle.retry_after(username)
    if wait is not None:
        _throttled()
        raise TooManyRequests(THROTTLED.format(minutes=WINDOW_MINUTES), retry_after=wait)
    # A name no row can hold (a NUL, which PostgreSQL refuses in a query; over the column's 150
    # characters) is an unknown user. Imported Django usernames may be non-ASCII: those are looked up.
    user = None
    if "\x00" not in username and len(username) <= USERNAME_MAX_LENGTH:
        user = (await session.execute(select(User).where(User.username == username))).scalar_one_or_none()
    # Verify even for unknown users so the two failures are indistinguishable, by body and by time.
    ok, new_hash = await passwords.verify_password(password, user.password if user else None)
    if user is None or not ok or not user.is_active:
        await throttle.failed(username)
        raise Unauthorized(BAD_CREDENTIALS, scheme=BASIC_CHALLENGE)
    await throttle.succeeded(username)
    if new_hash is not None:
        user.password = new_hash  # an imported bcrypt/Django hash, upgraded to argon2
    user.last_login = utcnow()
    token, plaintext = await api_keys.issue_login_token(session, user, ttl_seconds)
    return token, plaintext, user


async def logout(session: AsyncSession, principal: Principal) -> None:
    """Revoke the presented credential: a login token is deleted, a named key deactivated."""
    if principal.key_kind == KIND_LOGIN:
        await session.execute(delete(ApiKey).where(ApiKey.id == principal.key_id).returning(ApiKey.digest))
    else:
        revoke = update(ApiKey).where(ApiKey.id == principal.key_id).values(is_active=False)
        await session.execute(revoke.returning(ApiKey.digest))


async def logout_all(session: AsyncSession, principal: Principal) -> None:
    await api_keys.revoke_login_tokens(session, principal.user_id)
