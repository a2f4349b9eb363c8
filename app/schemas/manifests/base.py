"""The parts every SAM manifest shares: apiVersion, kind, metadata, spec, status.

Models are frozen (a manifest is a value) and refuse unknown fields, so a typo is a 422 naming it.
Field names are snake_case in Python and camelCase on the wire, exactly as the SDK's SAM models.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from app.schemas.base import Annotations, Name, Tags, Version, refuse_many_unknown_fields

API_VERSION = "smarter.sh/v1"


class SAMModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        frozen=True,
        extra="forbid",
    )

    @model_validator(mode="before")
    @classmethod
    def _few_unknown_fields(cls, data: Any) -> Any:
        return refuse_many_unknown_fields(cls, data)


class SAMMetadata(SAMModel):
    """`metadata`: the name is normalised to snake_case (`New API Key` -> `new_api_key`)."""

    name: Name
    description: str | None = Field(default=None, max_length=4096)
    version: Version | None = None
    tags: Tags | None = None
    annotations: Annotations | None = None


class SAMDependency(SAMModel):
    kind: str
    name: str


class SAMStatus(SAMModel):
    """`status` (read-only, returned by describe; ignored when applied)."""

    record_locator: str
    created: datetime
    modified: datetime
    dependencies: list[SAMDependency] = []


class SAMManifest(SAMModel):
    """A manifest of some kind; each kind narrows `kind`, `metadata` and `spec`."""

    api_version: Literal["smarter.sh/v1"]
    kind: str
    metadata: SAMMetadata
    spec: Any
    # Read-only: a describe result may be applied as is, so a status is accepted and ignored.
    status: dict[str, Any] | None = None
