"""Using a secret: its plaintext for a connection attempt, and the `lastAccessed` stamp.

The one function other domains call (connections, the plugin runtime). The caller has already found the
secret through a row of the same account (a connection's composite foreign key), so no scope is checked
here; the value goes to the outbound call and nowhere else (never a log, a response or an error).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Secret
from app.services.secrets import rules
from app.services.secrets.cipher import SecretCipher

# `lastAccessed` is written at most this often per secret (a targeted UPDATE whose WHERE decides).
ACCESS_STAMP_INTERVAL = timedelta(seconds=60)


async def reveal(session: AsyncSession, cipher: SecretCipher, secret_id: int, *, now: datetime) -> str:
    """The plaintext of secret `secret_id`, for a call that uses it now.

    Raises `rules.SecretUnavailable` (409) when the secret does not exist or has expired (`expiresAt` at or
    before `now`), `cipher.SecretsNotConfigured` / `cipher.SecretUndecryptable` (503) when no configured key
    opens it. Stamps `last_accessed = now` unless it was stamped within the last minute (one UPDATE, only
    when due; `updated_at` untouched). Nothing is committed here: the caller's unit of work commits.
    """
    statement = select(Secret.name, Secret.encrypted_value, Secret.expires_at, Secret.last_accessed).where(
        Secret.id == secret_id
    )
    row = (await session.execute(statement)).one_or_none()
    if row is None:
        raise rules.missing(secret_id)
    if row.expires_at is not None and row.expires_at <= now:
        raise rules.expired(row.name, row.expires_at)
    value = cipher.decrypt(row.encrypted_value)
    due = now - ACCESS_STAMP_INTERVAL
    if row.last_accessed is None or row.last_accessed <= due:
        await session.execute(
            update(Secret)
            .where(Secret.id == secret_id, or_(Secret.last_accessed.is_(None), Secret.last_accessed <= due))
            .values(last_accessed=now, updated_at=Secret.updated_at)  # not a change of the secret
            .execution_options(synchronize_session=False)
        )
    return value
