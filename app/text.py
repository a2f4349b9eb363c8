"""Text rules shared by models, schemas and manifests: validators, case conversions, names, masking.

Every pattern is applied with `fullmatch` and ASCII classes, so a trailing newline or a full-width
digit never passes (the original's `re.match(...$)` and `\\d` accepted both).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

SEMVER = re.compile(
    r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(?:-((?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)
SNAKE_CASE = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*")
CAMEL_CASE = re.compile(r"[a-z][a-zA-Z0-9]*")
USERNAME = re.compile(r"[A-Za-z0-9_.@+-]{1,150}")
# Annotation keys: the original's "URL friendly" alphabet.
ANNOTATION_KEY = re.compile(r"[a-zA-Z0-9._/-]{1,255}")
# No whitespace or control characters anywhere (PostgreSQL cannot even store NUL in text).
EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f-\x9f]{1,64}@[^@\s\x00-\x1f\x7f-\x9f]+\.[^@\s\x00-\x1f\x7f-\x9f]+")
# Unicode category Cc: C0, DEL and C1 (NEL, U+0085, is a newline too).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

NAME_MAX_LENGTH = 50
ANNOTATION_VALUE_MAX = 2048


def is_semver(value: str) -> bool:
    return SEMVER.fullmatch(value) is not None


def is_snake_case(value: str) -> bool:
    return SNAKE_CASE.fullmatch(value) is not None


def is_camel_case(value: str) -> bool:
    """lowerCamelCase; unlike the original, digits and one-letter names are allowed."""
    return CAMEL_CASE.fullmatch(value) is not None


def is_username(value: str) -> bool:
    return USERNAME.fullmatch(value) is not None


def is_email(value: str) -> bool:
    return len(value) <= 254 and EMAIL.fullmatch(value) is not None


def has_control_characters(value: str) -> bool:
    return _CONTROL.search(value) is not None


def to_snake_case(value: str) -> str:
    """The original's conversion: spaces and hyphens to `_`, camel humps and acronyms split, runs of `_` folded."""
    value = value.replace(" ", "_").replace("-", "_")
    value = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", value)
    value = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", value).lower()
    return re.sub(r"_+", "_", value)


def to_camel_case(value: str) -> str:
    """`user_name` -> `userName` (the original's conversion)."""
    head, *rest = value.split("_")
    return head + "".join(part.title() for part in rest)


def convert_keys(data: Any, convert: Any) -> Any:
    """Apply `convert` to every dict key, recursing into dicts and lists."""
    if isinstance(data, dict):
        return {convert(k) if isinstance(k, str) else k: convert_keys(v, convert) for k, v in data.items()}
    if isinstance(data, list):
        return [convert_keys(item, convert) for item in data]
    return data


def rfc1034_compliant(value: str) -> str:
    """A DNS-label-safe form of `value` (lowercase, `_` -> `-`, other symbols dropped, at most 63 chars)."""
    label = re.sub(r"[^a-z0-9-]", "", value.lower().replace("_", "-")).strip("-")
    if not label:
        raise ValueError(f"{value!r} has no RFC 1034 compliant characters.")
    # Unlike the original, strip again after truncating so the label never ends in a hyphen.
    return label[:63].rstrip("-")


def rfc1034_to_snake(value: str) -> str:
    return value.replace("-", "_")


def fold_to_ascii(value: str) -> str:
    """`héllo` -> `hello`: decompose, then drop what has no ASCII form."""
    return unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")


def normalise_name(value: str) -> str:
    """The one name normaliser (REST and manifests): `Test Plugin` -> `test_plugin`, `apiKey` -> `api_key`.

    Raises ValueError (with a sentence for the client) when no valid name comes out.
    """
    if len(value) <= NAME_MAX_LENGTH and is_snake_case(value):
        return value  # normalised already (what the SDK and most clients send): the rules below keep it as is
    # Checked before stripping: `name\n` is refused, not silently trimmed (the original's `$` quirk).
    if has_control_characters(value):
        raise ValueError("Names cannot contain control characters such as newlines or tabs.")
    stripped = value.strip()
    if not stripped:
        raise ValueError("Names cannot be empty.")
    ascii_name = fold_to_ascii(stripped)
    # Split camel humps before lowercasing so `apiKey` keeps its word boundary.
    ascii_name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", ascii_name)
    ascii_name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", ascii_name).lower()
    name = re.sub(r"[^a-z0-9]+", "_", ascii_name).strip("_")
    if not name or not is_snake_case(name):
        # The value is not echoed: error bodies never repeat what the client sent.
        raise ValueError("Names must contain letters or digits (e.g. `My Plugin` becomes `my_plugin`).")
    if len(name) > NAME_MAX_LENGTH:
        raise ValueError(f"Names are at most {NAME_MAX_LENGTH} characters once normalised to snake_case.")
    return name


def mask_string(
    value: str | bytes | object, mask_char: str = "*", mask_length: int = 4, string_length: int = 12
) -> str:
    """Keep the last `mask_length` characters, mask the rest, and show at most `string_length` of it.

    Strings no longer than `mask_length` come back unchanged (the original's behaviour).
    `string_length=0` means "no cap" here; the original returned the string unmasked in that case.
    """
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return str(value)
    if len(value) <= mask_length:
        return value
    cap = len(value) if string_length <= 0 else min(string_length, len(value))
    mask_length = min(mask_length, cap)
    masked = mask_char * (len(value) - mask_length) + value[len(value) - mask_length :]
    return masked[len(masked) - cap :]


def validate_annotations(value: Any) -> list[dict[str, Any]]:
    """A list of single-key objects whose keys are URL-friendly and whose string values are bounded."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("annotations must be a list of single-key objects.")
    # Errors name the position, never the submitted key or value.
    for position, item in enumerate(value, 1):
        if not isinstance(item, dict) or len(item) != 1:
            raise ValueError("Each annotation must be an object with exactly one key.")
        ((key, val),) = item.items()
        if not isinstance(key, str) or ANNOTATION_KEY.fullmatch(key) is None:
            raise ValueError(f"Annotation {position}: the key must be 1-255 letters, digits and . _ / -")
        if isinstance(val, str) and len(val) > ANNOTATION_VALUE_MAX:
            raise ValueError(f"Annotation {position}: the value is longer than {ANNOTATION_VALUE_MAX} characters.")
    return value


TAG_PATTERN = re.compile(r"[\w\-.~:/?#\[\]@!$&'()*+,;= %]{1,100}", re.ASCII)


def validate_tags(value: Any) -> list[str]:
    """Distinct, stripped tags of 1..100 printable characters, in the order given."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise ValueError("tags must be a list of strings.")
    seen: dict[str, None] = {}
    for position, tag in enumerate(value, 1):
        cleaned = tag.strip()
        if TAG_PATTERN.fullmatch(cleaned) is None:
            raise ValueError(f"Tag {position} must be 1-100 printable characters.")
        seen.setdefault(cleaned, None)
    return list(seen)


def iso_utc(value: datetime) -> str:
    """The one spelling of a timestamp in `get` tables: ISO 8601 in UTC with a `Z` suffix."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
