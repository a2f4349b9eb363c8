"""User passwords: passlib (libpass) with argon2; imported bcrypt and Django hashes verify and upgrade.

Hashing costs ~100 ms of CPU by design, so it always runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import TYPE_CHECKING

from app.errors import Unprocessable

if TYPE_CHECKING:
    from passlib.context import CryptContext

# Smarter is a Django project: its users' hashes may be Django-formatted (pbkdf2 by default).
_LEGACY = ["bcrypt", "django_argon2", "django_bcrypt_sha256", "django_bcrypt", "django_pbkdf2_sha256"]


@functools.cache
def _context() -> CryptContext:
    """Made by the first password hashed or checked: passlib and its handlers are ~3 MiB a worker that serves
    keys only does without."""
    from passlib.context import CryptContext

    return CryptContext(schemes=["argon2", *_LEGACY], deprecated=_LEGACY)


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so both failures take the same time.

    Made on first use, not at import: an argon2 hash allocates its memory cost (64 MiB) for its duration, and
    at import that set every worker's peak resident size 64 MiB above what it ever needs while serving.
    """
    return str(_context().hash("smarter-core timing equaliser"))


def _verify_unknown(password: str) -> None:
    _context().verify(password, _dummy_hash())


async def hash_password(password: str) -> str:
    try:
        return await asyncio.to_thread(_context().hash, password)
    except ValueError as exc:  # passlib's size limit (4096 characters)
        raise Unprocessable.field("password", "This password is too long.") from exc


async def verify_password(password: str, stored_hash: str | None) -> tuple[bool, str | None]:
    """(matches, new hash to store when the stored one uses an outdated scheme).

    A password passlib refuses (over 4096 characters, NUL for bcrypt) or a malformed stored hash (a corrupt
    import) raises ValueError there: here it is simply no match, never a 500 on the login route.
    """
    if stored_hash and _context().identify(stored_hash) is not None:
        try:
            ok, new_hash = await asyncio.to_thread(_context().verify_and_update, password, stored_hash)
        except ValueError:
            pass
        else:
            return bool(ok), new_hash
    with contextlib.suppress(ValueError):
        await asyncio.to_thread(_verify_unknown, password)
    return False, None
