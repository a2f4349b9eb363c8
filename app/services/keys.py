"""The key format (knox-compatible): 64 lowercase hex characters; stored as a prefix and a SHA-512 digest."""

from __future__ import annotations

import hashlib
import re
import secrets

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
