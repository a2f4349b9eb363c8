"""The Smarter journal envelope of `/api/v1/cli/` responses, and the `data` of each command.

Shapes follow the SDK (`smarter.models.journal`, `manifest`, `platform`): a success is
`{api, data, message, metadata: {command, thing}}`, an error `{api, metadata, error: {errorClass,
description, status}}`. The SDK's models keep unknown fields, so extra keys here are safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic_core import to_json

from app.errors import FieldError
from app.schemas.accounts import AccountRead
from app.schemas.base import CamelModel
from app.schemas.users import UserRead

JOURNAL_API = "smarter.sh/v1"

DataT = TypeVar("DataT")


class JournalMetadata(BaseModel):
    command: str = Field(examples=["apply"], description="The command, e.g. apply, get, example_manifest.")
    thing: str = Field(examples=["Plugin"], description="The manifest kind, or the string 'None'.")


class JournalEnvelope(BaseModel):
    api: str = Field(default=JOURNAL_API, examples=[JOURNAL_API])
    metadata: JournalMetadata


class Journaled(JournalEnvelope, Generic[DataT]):
    """A successful response: the command's `data` and a human `message`."""

    data: DataT
    message: str = Field(examples=["Plugin test_plugin applied successfully"])


class JournalMessage(JournalEnvelope):
    """A successful response that carries only a message (delete, deploy, undeploy); `data` is null."""

    data: None = None
    message: str = Field(examples=["Plugin test_plugin deleted successfully"])


class JournalError(CamelModel):
    error_class: str = Field(examples=["NotFound"], description="The error's class.")
    description: str = Field(examples=["No plugin named 'x' is visible to you."])
    status: int = Field(examples=[404], description="The HTTP status, repeated.")
    errors: list[FieldError] | None = Field(default=None, description="The invalid fields (422).")
    request_id: str | None = Field(default=None, description="The request's id (its `X-Request-ID` header).")


class JournalErrorResponse(JournalEnvelope):
    """Every error of the manifest API (never a stack trace)."""

    error: JournalError


# --- data of the commands ----------------------------------------------------------------------------


class ManifestDocument(BaseModel):
    """A SAM manifest: `apiVersion`, `kind`, `metadata`, `spec` and, from describe, the read-only `status`."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, serialize_by_alias=True)

    api_version: str = Field(alias="apiVersion", examples=["smarter.sh/v1"])
    kind: str = Field(examples=["Plugin"])
    metadata: dict[str, Any] = Field(examples=[{"name": "test_plugin", "version": "1.0.0"}])
    spec: dict[str, Any] = Field(default_factory=dict)
    status: dict[str, Any] | None = None


class ManifestValidation(BaseModel):
    valid: bool
    errors: list[FieldError] = Field(default_factory=list, description="Why the manifest is invalid (empty if valid).")


class ManifestListTitle(BaseModel):
    name: str = Field(examples=["name"])
    type: str = Field(examples=["CharField"], description="A Django field type name, as the original sent.")


class ManifestListData(BaseModel):
    titles: list[ManifestListTitle]
    items: list[dict[str, Any]]


class ManifestListMetadata(BaseModel):
    count: int


class ManifestList(BaseModel):
    """The result of `get`: the kind's rows as a table (the SDK's `ManifestList`)."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    api_version: str = Field(default=JOURNAL_API, alias="apiVersion")
    kind: str
    name: str | None = Field(default=None, description="The `?name=` filter, if any.")
    metadata: ManifestListMetadata
    data: ManifestListData


def table_row_json(row: Mapping[str, Any]) -> bytes:
    """A `get` table row as JSON, as the envelope's serializer writes an item of `ManifestListData.items`."""
    return to_json(row, inf_nan_mode="null")


_MANIFEST_LIST = TypeAdapter(Journaled[ManifestList])
_NO_ITEMS = b'"items":[]'


def manifest_list_ends(envelope: Journaled[ManifestList]) -> tuple[bytes, bytes]:
    """`envelope` (its table's `items` empty) as JSON, cut where its items go: the bytes before the first item
    and after the last, so that rows kept as JSON (`table_row_json`, a plugin's in its snapshot) go between
    them, joined by commas, without being serialised again (a table's hundreds of `Any` values were a third of
    a `get/plugins/`). Inside a JSON string every quote is escaped, so the one unescaped `"items":[]` is the
    table's.
    """
    head, found, tail = _MANIFEST_LIST.dump_json(envelope, by_alias=True).partition(_NO_ITEMS)
    if not found:
        raise ValueError("The envelope's table has items already.")
    return head + b'"items":[', b"]" + tail


class WhoAmI(BaseModel):
    user: UserRead
    account: AccountRead = Field(description="The account the caller acts in.")
    environment: str = Field(examples=["local"])


class ApiVersionInfo(BaseModel):
    version: str = Field(examples=["0.1.0"])
    python: dict[str, str | None] = Field(description="Versions of the Python runtime and main packages.")


class CliVersionInfo(BaseModel):
    version: str | None = Field(default=None, description="The recommended smarter CLI version (not tracked).")


class PlatformVersion(BaseModel):
    api: ApiVersionInfo
    cli: CliVersionInfo


class PlatformStatus(BaseModel):
    infrastructures: dict[str, Any] = Field(description="The database (and its schema revision), the caches.")
    compute: dict[str, Any] = Field(description="The Python runtime and the machine.")


class KindInfo(BaseModel):
    """A kind the manifest API serves (the SDK's `KindInfo`)."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    singular: str = Field(alias="Singular", examples=["Plugin"])
    plural: str = Field(alias="Plural", examples=["Plugins"])
    api_kind: str = Field(alias="APIKind", examples=["Plugin"])
    display: str = Field(alias="Display", examples=["Plugin"])
    display_plural: str = Field(alias="DisplayPlural", examples=["Plugins"])
    deployable: bool = Field(alias="Deployable")
