"""User profile shapes (the SDK's `UserProfile`: `user`, `account: {accountNumber}`, `profileImageUrl`, `isTest`)."""

from __future__ import annotations

import re
from typing import Annotated, ClassVar

from pydantic import AfterValidator, ConfigDict, Field

from app.schemas.base import (
    AccountRef,
    Annotations,
    Description,
    InputModel,
    MetadataRead,
    MetadataUpdate,
    Name,
    Tags,
    Username,
    Version,
)
from app.schemas.users import AccountNumber, PatchModel, UserRead

_URL = re.compile(r"https?://[^\s\x00-\x1f\x7f]+", re.IGNORECASE)


def _image_url(value: str) -> str:
    if _URL.fullmatch(value) is None:
        raise ValueError("must be an http(s) URL without spaces.")
    return value


ImageUrl = Annotated[str, Field(max_length=200, examples=["https://example.com/jane.png"]), AfterValidator(_image_url)]


class ProfileRead(MetadataRead):
    user: UserRead
    account: AccountRef
    profile_image_url: str | None
    is_test: bool


class ProfileCreate(InputModel):
    """Add an existing user to an account (superusers only)."""

    username: Username
    account_number: AccountNumber
    name: Name | None = Field(None, description="Defaults to the username, normalised to snake_case.")
    description: Description = ""
    version: Version = "1.0.0"
    tags: Tags = Field(default_factory=list)
    annotations: Annotations = Field(default_factory=list)
    profile_image_url: ImageUrl | None = None
    is_test: bool = False

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"username": "jane.doe", "accountNumber": "1234-5678-9012"}]}
    )


class ProfileUpdate(PatchModel, MetadataUpdate):
    """Metadata, `profileImageUrl` (null clears it) and `isTest`; a profile's user and account never change."""

    nullable: ClassVar[frozenset[str]] = frozenset({"profile_image_url"})

    profile_image_url: ImageUrl | None = None
    is_test: bool | None = None

    model_config = ConfigDict(json_schema_extra={"examples": [{"isTest": True, "tags": ["beta"]}]})
