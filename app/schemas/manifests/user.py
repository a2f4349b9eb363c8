"""The `User` manifest, as the SDK's `SAMUser` and the original's user.yaml.

`metadata.username` identifies the user; `metadata.name` (normalised) and the other metadata are kept
on the user's profile in the acting account. `status.account_number` is snake_case, as in the SDK.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from app.schemas.base import CamelModel, Username
from app.schemas.manifests.base import API_VERSION, SAMDependency, SAMManifest, SAMMetadata, SAMModel
from app.schemas.users import PersonName, RequiredEmail


class UserMetadata(SAMMetadata):
    username: Username = Field(description="The user's username (what `?name=` means for this kind).")


class UserConfig(SAMModel):
    email: RequiredEmail
    first_name: PersonName | None = None
    last_name: PersonName | None = None
    is_active: bool
    is_staff: bool = False


class UserSpec(SAMModel):
    config: UserConfig


class UserManifest(SAMManifest):
    kind: Literal["User"]
    metadata: UserMetadata
    spec: UserSpec


# --- describe ---------------------------------------------------------------------------------------------


class UserManifestMetadataRead(CamelModel):
    name: str
    description: str
    version: str
    tags: list[str]
    annotations: list[dict[str, Any]]
    username: str


class UserConfigRead(CamelModel):
    email: str
    first_name: str
    last_name: str
    is_active: bool
    is_staff: bool


class UserSpecRead(CamelModel):
    config: UserConfigRead


class UserStatusRead(CamelModel):
    record_locator: str
    created: datetime
    modified: datetime
    username: str
    # The SDK's SAMUserStatus spells this one key in snake_case.
    account_number: str = Field(alias="account_number")
    dependencies: list[SAMDependency] = Field(default_factory=list)


class UserManifestRead(CamelModel):
    api_version: str = API_VERSION
    kind: Literal["User"] = "User"
    metadata: UserManifestMetadataRead
    spec: UserSpecRead
    status: UserStatusRead


def example_manifest() -> dict[str, Any]:
    """The original's user.yaml, with an example.com address (it applies cleanly in a fresh account)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "User",
        "metadata": {
            "name": "example_user",
            "username": "example_user",
            "description": "an example user manifest for the Smarter API User",
            "version": "1.0.0",
            "tags": ["user", "account"],
            "annotations": [{"smarter.sh/created-by": "system"}],
        },
        "spec": {
            "config": {
                "email": "example_user@example.com",
                "firstName": "John",
                "lastName": "Doe",
                "isActive": True,
                "isStaff": False,
            }
        },
    }
