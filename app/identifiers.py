"""Smarter's public identifiers: hashed ids, record locators and account numbers.

The formats are the original's (wire compatibility); the parsing is strict: full matches only, ids >= 1.
A hashed id is a reversible encoding of the integer id, not a secret.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from datetime import UTC, datetime

HASH_PREFIX = "r"
HASH_SUFFIX = "x"
HASH_FLOOR = 1_000_000
# Ids are 64-bit signed integers in the database; larger ones cannot exist (and overflow the driver).
MAX_ID = 2**63 - 1
# Bounds the decimal strings handed to int(): Python refuses more than 4300 digits (ValueError).
_MAX_DIGITS = len(str(MAX_ID + HASH_FLOOR))

_HASHED_ID = re.compile(r"r([A-Za-z0-9_-]+)x")
_DECIMAL = re.compile(r"[0-9]+")
ACCOUNT_NUMBER_PATTERN = re.compile(r"[0-9]{4}-[0-9]{4}-[0-9]{4}")
PLATFORM_ACCOUNT_NUMBER = "3141-5926-5359"
# Given on create, "generate a number for me" (the original's default); never stored.
ACCOUNT_NUMBER_SENTINEL = "9999-9999-9999"


def hashed_id(id_: int) -> str:
    """`r` + unpadded urlsafe base64 of the decimal string of `id + 1_000_000` + `x` (1 -> `rMTAwMDAwMQx`)."""
    encoded = base64.urlsafe_b64encode(str(int(id_) + HASH_FLOOR).encode()).decode().rstrip("=")
    return f"{HASH_PREFIX}{encoded}{HASH_SUFFIX}"


def id_from_hashed_id(value: str) -> int | None:
    """The integer id of a hashed id, or None for anything that is not one (or decodes below 1)."""
    match = _HASHED_ID.fullmatch(value)
    if match is None:
        return None
    body = match.group(1)
    # Only the canonical unpadded form: a length of 1 (mod 4) is never valid base64.
    if len(body) % 4 == 1:
        return None
    try:
        decoded = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if len(decoded) > _MAX_DIGITS or not _DECIMAL.fullmatch(decoded):
        return None
    id_ = int(decoded) - HASH_FLOOR
    if not 1 <= id_ <= MAX_ID or hashed_id(id_) != value:
        return None
    return id_


def record_locator(class_name: str, id_: int) -> str:
    """`<lowercased class name>-<hashed id>`, e.g. `pluginmeta-rMTAwMDEyMwx`."""
    return f"{class_name.lower()}-{hashed_id(id_)}"


def parse_path_id(value: str) -> int | None:
    """A path `{id}`: a positive integer or a hashed id; None when it is neither."""
    if _DECIMAL.fullmatch(value):
        if len(value) > _MAX_DIGITS:
            return None
        id_ = int(value)
        return id_ if 1 <= id_ <= MAX_ID else None
    return id_from_hashed_id(value)


def is_account_number(value: str) -> bool:
    """`DDDD-DDDD-DDDD`, ASCII digits only, no trailing newline."""
    return ACCOUNT_NUMBER_PATTERN.fullmatch(value) is not None


def random_account_number() -> str:
    """A fresh `DDDD-DDDD-DDDD` from `secrets`; uniqueness is the database's job (callers retry)."""
    return "-".join(f"{secrets.randbelow(10_000):04d}" for _ in range(3))


def elapsed_updated(updated_at: datetime | None, now: datetime | None = None) -> int | None:
    """Whole seconds since `updated_at` (naive values are taken as UTC), None when unset."""
    if updated_at is None:
        return None
    if updated_at.tzinfo is None:
        updated_at = updated_at.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return int(abs((now - updated_at).total_seconds()))
