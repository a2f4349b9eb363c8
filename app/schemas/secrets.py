"""Secret shapes (`/api/v1/secrets/`). The value is write-only: no output shape carries it, in any form."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Final

from pydantic import AfterValidator, ConfigDict, Field

from app.schemas.base import MetadataCreate, MetadataRead, MetadataUpdate, OwnerRef, Timestamp
from app.schemas.users import AccountNumber, PatchModel

# What `describe` shows instead of a value; applying it back keeps the stored value.
MASK: Final = "********"
# At most 64 KiB of UTF-8 (the model's `SECRET_VALUE_MAX_LENGTH`, counted in bytes).
VALUE_MAX_BYTES: Final = 65536
_VALUE = (
    "The secret's value (a password, an API key): encrypted at rest, never returned. At most 64 KiB of UTF-8. "
    f"`{MASK}` (what describe shows) means: keep the stored value."
)
_EXPIRES = "When the secret stops being usable (ISO-8601 with a UTC offset); null: never."


def _value_size(value: str) -> str:
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (`"\ud800"` in JSON): no text to encrypt
        raise ValueError("is not valid Unicode text.") from None
    if len(encoded) > VALUE_MAX_BYTES:
        raise ValueError(f"is longer than {VALUE_MAX_BYTES // 1024} KiB.")
    return value


# A value as given: not empty, at most 64 KiB (UTF-8). Shared by REST and the `Secret` manifest.
SecretValue = Annotated[
    str,
    Field(min_length=1, max_length=VALUE_MAX_BYTES, description=_VALUE, examples=["s3cr3t-passw0rd"]),
    AfterValidator(_value_size),
]


class SecretRead(MetadataRead):
    """A secret's metadata (SDK `Secret`); never its value."""

    user_profile: OwnerRef
    expires_at: datetime | None = Field(description=_EXPIRES)
    last_accessed: datetime | None = Field(
        description="When a connection last used the value (stamped at most once a minute)."
    )


class SecretCreate(MetadataCreate):
    """A new secret, owned by your profile in your acting account (or `accountNumber`)."""

    value: SecretValue
    account_number: AccountNumber | None = Field(
        None, description="The owner account (default: your acting account); a superuser may name any."
    )
    expires_at: Timestamp | None = Field(None, description=_EXPIRES)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "warehouse_password", "value": "s3cr3t-passw0rd", "description": "Read-only DB user"},
                {"name": "Weather API key", "value": "wk-0123456789", "expiresAt": "2030-01-01T00:00:00Z"},
            ]
        }
    )


class SecretUpdate(PatchModel, MetadataUpdate):
    """Rotate the value, change the metadata or `expiresAt` (null: never expires)."""

    nullable: ClassVar[frozenset[str]] = frozenset({"expires_at"})

    value: SecretValue | None = None
    expires_at: Timestamp | None = Field(None, description=_EXPIRES)

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"value": "n3w-passw0rd"}, {"description": "Rotated", "expiresAt": None}]}
    )
