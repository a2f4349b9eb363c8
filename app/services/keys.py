"""The key format (knox-compatible): 64 lowercase hex characters; stored as a prefix and a SHA-512 digest."""

from __future__ import annotations

import hashlib
import re
import secrets

from app.errors import Unauthorized

KEY_PATTERN = re.compile(r"[0-9a-f]{64}")
KNOX_TOKEN_KEY_LENGTH = 15


def generate_key() -> str:
    return secrets.token_hex(32)


def is_well_formed(key: str) -> bool:
    return KEY_PATTERN.fullmatch(key) is not None


def digest_of(key: str) -> str:
    """Unsalted SHA-512 hex, as knox stores it: 256 random bits need no salt or slow hash."""
    return hashlib.sha512(key.encode("utf-8")).hexdigest()


def token_key_of(key: str, length: int = KNOX_TOKEN_KEY_LENGTH) -> str:
    return key[:length]


def parse_authorization(value: str | None) -> str:
    """The key of `Token <key>` / `Bearer <key>`; raises 401 without any I/O when malformed."""
    # Split on runs of whitespace, as knox does: `Token  <key>` keeps working for Smarter's clients.
    parts = value.split() if value else []
    if not parts:
        raise Unauthorized("Authentication credentials were not provided.")
    if parts[0].lower() not in ("token", "bearer"):
        raise Unauthorized("Invalid token header. Use 'Token <key>'.")
    if len(parts) == 1:
        raise Unauthorized("Invalid token header. No credentials provided.")
    if len(parts) > 2:
        raise Unauthorized("Invalid token header. Token string should not contain spaces.")
    if not is_well_formed(parts[1]):
        raise Unauthorized("Invalid token.")
    return parts[1]
