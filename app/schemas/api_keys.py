"""API key shapes (`/api/v1/api-keys/`). No shape carries the digest or the token key; the plaintext
appears only in `ApiKeyCreated`, the response of the one request that made the key.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

from pydantic import ConfigDict, Field

from app.schemas.base import (
    AccountRef,
    CamelModel,
    MetadataCreate,
    MetadataRead,
    MetadataUpdate,
    Timestamp,
    Username,
    UserRef,
)
from app.schemas.users import AccountNumber, PatchModel

_EXPIRES = "When the key stops working (ISO-8601 with a UTC offset, in the future); null: never."


class KeyUserRead(CamelModel):
    """The user the key authenticates as."""

    id: int
    username: str


class KeyOwnerRead(CamelModel):
    """The profile that owns the key: the key's user in one account."""

    id: int
    user: UserRef
    account: AccountRef


class ApiKeyRead(MetadataRead):
    key_id: uuid.UUID = Field(description="The key's public UUID; `/api/v1/api-keys/{keyId}/` accepts it.")
    is_active: bool
    last_used_at: datetime | None = Field(description="Updated at most once a minute.")
    expires_at: datetime | None = Field(description=_EXPIRES)
    identifier: str = Field(
        examples=["****9bdd"], description="`****` and the last 4 characters of the key's digest (not of the key)."
    )
    user: KeyUserRead
    user_profile: KeyOwnerRead


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(
        examples=["5f2b8c0d9e1a4b7c3d6e8f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c"],
        description="The key itself: shown in this response only, never stored. Send it as `Token <key>`.",
    )


class ApiKeyCreate(MetadataCreate):
    """A new key for a staff user (default: you), owned by their profile in your acting account."""

    username: Username | None = Field(None, description="The key's user, a staff user; default: you.")
    account_number: AccountNumber | None = Field(
        None, description="The owner account (default: your acting account); a superuser may name any."
    )
    expires_at: Timestamp | None = Field(None, description=_EXPIRES)
    is_active: bool = True

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "CI pipeline", "description": "Deploys from CI", "expiresAt": "2030-01-01T00:00:00Z"},
                {"name": "ops_key", "username": "jane.doe", "tags": ["ops"]},
            ]
        }
    )


class ApiKeyUpdate(PatchModel, MetadataUpdate):
    """Metadata, `isActive`, `expiresAt` (null: never expires). The key's user and owner never change."""

    nullable: ClassVar[frozenset[str]] = frozenset({"expires_at"})

    is_active: bool | None = None
    expires_at: Timestamp | None = Field(None, description=_EXPIRES)

    model_config = ConfigDict(json_schema_extra={"examples": [{"description": "Rotated monthly", "isActive": False}]})
