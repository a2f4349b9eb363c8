"""Schema bases: camelCase on the wire, both spellings accepted on input, unknown input fields refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from app import documents, text


class CamelModel(BaseModel):
    """Outputs: camelCase JSON, read from ORM objects (properties included)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        from_attributes=True,
    )


# Beyond this many unknown fields, an input is refused with one error rather than one per field: tens of
# thousands of errors (a 1 MiB body of them) cost seconds of the event loop to build and render.
MAX_UNKNOWN_FIELDS = 20
_KNOWN_NAMES: dict[type[BaseModel], frozenset[str]] = {}


def _known_names(model: type[BaseModel]) -> frozenset[str]:
    names = _KNOWN_NAMES.get(model)
    if names is None:
        found: set[str] = set()
        for name, info in model.model_fields.items():
            found.update(n for n in (name, info.alias) if n)
            choices = getattr(info.validation_alias, "choices", [info.validation_alias])
            found.update(c for c in choices if isinstance(c, str))
        names = _KNOWN_NAMES[model] = frozenset(found)
    return names


def refuse_many_unknown_fields(model: type[BaseModel], data: Any) -> Any:
    """A `mode="before"` model validator: more than `MAX_UNKNOWN_FIELDS` unknown fields are one error."""
    if isinstance(data, dict) and len(data) > MAX_UNKNOWN_FIELDS:
        known = _known_names(model)
        unknown = sum(1 for key in data if key not in known)
        if unknown > MAX_UNKNOWN_FIELDS:
            raise ValueError(f"{unknown} fields are not fields of this resource.")
    return data


class InputModel(CamelModel):
    """Inputs: camelCase or snake_case; any other field is a 422 naming it (no mass assignment)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    @model_validator(mode="before")
    @classmethod
    def _few_unknown_fields(cls, data: Any) -> Any:
        return refuse_many_unknown_fields(cls, data)


def one_line(value: str) -> str:
    """Free text of one line: trimmed, and refused with a control character (a newline or tab) inside."""
    cleaned = value.strip()
    if text.has_control_characters(cleaned):
        raise ValueError("may not contain control characters such as newlines or tabs.")
    return cleaned


def required_line(value: str) -> str:
    """`one_line`, and not empty once trimmed."""
    cleaned = one_line(value)
    if not cleaned:
        raise ValueError("may not be empty.")
    return cleaned


def _name(value: str) -> str:
    return text.normalise_name(value)


def _semver(value: str) -> str:
    if not text.is_semver(value):
        raise ValueError("must be a semantic version such as 1.0.0 (https://semver.org).")
    return value


def _username(value: str) -> str:
    if not text.is_username(value):
        raise ValueError("must be 1-150 letters, digits and . @ + - _ characters.")
    return value


def _email(value: str) -> str:
    if value and not text.is_email(value):
        raise ValueError("is not a valid email address.")
    return value


def _stored(value: Any) -> Any:
    try:
        return documents.check_stored(value)
    except documents.DocumentError as exc:
        raise ValueError(str(exc)) from None


def _in_range(value: datetime) -> datetime:
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range: the year in UTC must be 1 to 9999.") from None
    return value


_STORED_DESCRIPTION = (
    f"Stored as JSON: at most {documents.MAX_STORED_BYTES // 1024} KiB serialised, "
    f"nested at most {documents.MAX_DEPTH} levels."
)
# A JSON object a column stores (static data, parameters, annotations): the size and nesting caps of every
# stored JSON field, checked wherever one is input (REST and manifests).
StoredObject = Annotated[dict[str, Any], AfterValidator(_stored), Field(description=_STORED_DESCRIPTION)]
# A timestamp given by a client: with a UTC offset, and within years 1..9999 once converted to UTC.
Timestamp = Annotated[AwareDatetime, AfterValidator(_in_range)]

# Validated, normalised field types shared by every input schema.
Name = Annotated[str, Field(max_length=255, examples=["test_plugin"]), AfterValidator(_name)]
Version = Annotated[str, Field(max_length=255, examples=["1.0.0"]), AfterValidator(_semver)]
Tags = Annotated[list[str], Field(max_length=50, examples=[["red", "green"]]), AfterValidator(text.validate_tags)]
Annotations = Annotated[
    list[dict[str, Any]],
    Field(max_length=100, examples=[[{"smarter.sh/author": "Jane"}]]),
    AfterValidator(text.validate_annotations),
    AfterValidator(_stored),
]
Username = Annotated[str, Field(max_length=150, examples=["jane.doe"]), AfterValidator(_username)]
Email = Annotated[str, Field(max_length=254, examples=["jane@example.com"]), AfterValidator(_email)]
Description = Annotated[str, Field(max_length=4096)]


class MetadataCreate(InputModel):
    """SAM metadata on create: a name, and optional description, version, tags and annotations."""

    name: Name
    description: Description = ""
    version: Version = "1.0.0"
    tags: Tags = []
    annotations: Annotations = []


class MetadataUpdate(InputModel):
    """SAM metadata on update: every field optional; only the fields sent are changed."""

    name: Name | None = None
    description: Description | None = None
    version: Version | None = None
    tags: Tags | None = None
    annotations: Annotations | None = None


DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_OFFSET = 10_000_000
LIMIT_DESCRIPTION = (
    "Rows per page (max 1000), with a `Link` to the next page. Without `limit` the list is complete: "
    "every row in scope, streamed, with no `Link`."
)
OFFSET_DESCRIPTION = "Rows to skip."


class PageQuery(BaseModel):
    """A list's `limit` and `offset`, the base of a list's query parameters declared as one model.

    FastAPI 0.16x re-inspects every separately declared query parameter's type on every request (about 25
    Python calls each); a model is validated once. Other query parameters of unknown names are ignored.
    """

    limit: int | None = Field(None, ge=1, le=MAX_LIMIT, description=LIMIT_DESCRIPTION)
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description=OFFSET_DESCRIPTION)


class IdentifiedRead(CamelModel):
    id: int = Field(examples=[1])
    hashed_id: str = Field(examples=["rMTAwMDAwMQx"])
    record_locator: str


class TimestampedRead(IdentifiedRead):
    created_at: datetime
    updated_at: datetime


class MetadataRead(TimestampedRead):
    name: str
    description: str
    version: str
    tags: list[str]
    annotations: list[dict[str, Any]]


class UserRef(CamelModel):
    username: str
    email: str | None = None


class AccountRef(CamelModel):
    account_number: str


class OwnerRef(CamelModel):
    """A resource's owner as the SDK expects it: the profile as its user and its account."""

    user: UserRef
    account: AccountRef
