"""The `Secret` manifest, as the SDK's `SAMSecret`: `spec.config: {value, expiration_date}`.

The SDK spells `expiration_date` and `status.last_accessed` in snake_case; both are written so here
(`expirationDate` is accepted on input too). `describe` shows the value as the mask, and applying the mask
keeps the stored value, so a described manifest applies back unchanged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal

from pydantic import AliasChoices, Field

from app.schemas.base import CamelModel, Timestamp
from app.schemas.manifests.base import API_VERSION, SAMDependency, SAMManifest, SAMMetadata, SAMModel
from app.schemas.secrets import MASK, SecretValue

KIND: Final = "Secret"
_EXPIRATION = "When the secret stops being usable (ISO-8601 with a UTC offset); absent or null: never."


class SecretConfig(SAMModel):
    value: SecretValue
    expiration_date: Timestamp | None = Field(
        None,
        validation_alias=AliasChoices("expiration_date", "expirationDate"),
        serialization_alias="expiration_date",
        description=_EXPIRATION,
    )


class SecretSpec(SAMModel):
    config: SecretConfig


class SecretManifest(SAMManifest):
    kind: Literal["Secret"]
    metadata: SAMMetadata
    spec: SecretSpec


# --- describe ---------------------------------------------------------------------------------------------


class SecretMetadataRead(CamelModel):
    name: str
    description: str
    version: str
    tags: list[str]
    annotations: list[dict[str, Any]]


class SecretConfigRead(CamelModel):
    value: Literal["********"] = MASK
    expiration_date: datetime | None = Field(alias="expiration_date")


class SecretSpecRead(CamelModel):
    config: SecretConfigRead


class SecretStatusRead(CamelModel):
    account_number: str
    username: str
    record_locator: str
    created: datetime
    modified: datetime
    last_accessed: datetime | None = Field(alias="last_accessed")
    dependencies: list[SAMDependency] = Field(default_factory=list)


class SecretManifestRead(CamelModel):
    api_version: str = API_VERSION
    kind: Literal["Secret"] = KIND
    metadata: SecretMetadataRead
    spec: SecretSpecRead
    status: SecretStatusRead


def example_manifest() -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": "example_secret",
            "description": "An example Smarter API manifest for a Secret: a password a connection uses.",
            "version": "1.0.0",
            "tags": ["example"],
            "annotations": [{"smarter.sh/secret/purpose": "example"}],
        },
        "spec": {"config": {"value": "change-me-to-the-real-password", "expiration_date": "2099-12-31T00:00:00Z"}},
    }
