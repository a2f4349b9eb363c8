"""The `SmarterAuthToken` manifest (API keys), as the SDK's `SAMSmarterAuthToken` and the original's
auth-token.yaml: `spec.config: {isActive, username}`; `status.lastUsedAt` besides the common fields.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal

from pydantic import Field

from app.schemas.base import CamelModel, Username
from app.schemas.manifests.base import API_VERSION, SAMDependency, SAMManifest, SAMMetadata, SAMModel

KIND: Final = "SmarterAuthToken"
# The one username every deployment has (bootstrap creates it); see `example_manifest`.
EXAMPLE_USERNAME = "admin"


class SmarterAuthTokenConfig(SAMModel):
    # The SDK's default: a key applied without `isActive` starts deactivated.
    is_active: bool = Field(False, description="Whether the key authenticates (deploy/undeploy flip it).")
    username: Username = Field(description="The key's user: a staff user of your acting account.")


class SmarterAuthTokenSpec(SAMModel):
    config: SmarterAuthTokenConfig


class SmarterAuthTokenManifest(SAMManifest):
    kind: Literal["SmarterAuthToken"]
    metadata: SAMMetadata
    spec: SmarterAuthTokenSpec


# --- describe ---------------------------------------------------------------------------------------------


class SmarterAuthTokenMetadataRead(CamelModel):
    name: str
    description: str
    version: str
    tags: list[str]
    annotations: list[dict[str, Any]]


class SmarterAuthTokenConfigRead(CamelModel):
    is_active: bool
    username: str


class SmarterAuthTokenSpecRead(CamelModel):
    config: SmarterAuthTokenConfigRead


class SmarterAuthTokenStatusRead(CamelModel):
    record_locator: str
    created: datetime
    modified: datetime
    last_used_at: datetime | None
    dependencies: list[SAMDependency] = Field(default_factory=list)


class SmarterAuthTokenManifestRead(CamelModel):
    api_version: str = API_VERSION
    kind: Literal["SmarterAuthToken"] = KIND
    metadata: SmarterAuthTokenMetadataRead
    spec: SmarterAuthTokenSpecRead
    status: SmarterAuthTokenStatusRead


def example_manifest() -> dict[str, Any]:
    """The original's example, with a username that exists: `admin`, the platform superuser.

    The example is static (it cannot name the caller), and the original's `valid_smarter_username`
    exists nowhere. As is, it applies for `admin`; anyone else puts a staff username of their account.
    """
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": "example_api_key",
            "description": "An example Smarter API manifest for a SmarterAuthToken",
            "version": "1.0.0",
            "tags": ["example"],
            "annotations": [{"smarter.sh/api-key/purpose": "example"}],
        },
        "spec": {"config": {"isActive": True, "username": EXAMPLE_USERNAME}},
    }
