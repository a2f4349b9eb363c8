"""Plugin shapes: the flat row (the SDK's `Plugin`), its manifest sections, and its three parts.

The field rules of a plugin's parts (selector, prompt, static data) are defined once here, as annotated
types and functions, and shared by the REST inputs and the `Plugin` manifest (`app.schemas.manifests.plugin`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, AliasChoices, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from app import text
from app.models.plugin import (
    DEFAULT_MAX_COMPLETION_TOKENS,
    DEFAULT_MODEL,
    DEFAULT_PROVIDER,
    DEFAULT_SYSTEM_ROLE,
    DEFAULT_TEMPERATURE,
    MAX_COMPLETION_TOKENS,
    SYSTEM_ROLE_MAX_LENGTH,
)
from app.schemas.base import (
    CamelModel,
    Description,
    InputModel,
    MetadataCreate,
    MetadataRead,
    MetadataUpdate,
    Name,
    OwnerRef,
    PageQuery,
    StoredObject,
    TimestampedRead,
)
from app.schemas.plugin_data import ApiDataSpec, ManifestApiDataRead, ManifestSqlDataRead, SqlDataSpec

API_VERSION = "smarter.sh/v1"
SEARCH_TERM_MAX_LENGTH = 255
SEARCH_TERMS_MAX = 500
JSON_SCHEMA_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})

PluginClass = Literal["static", "sql", "api"]
Directive = Literal["search_terms", "always", "llm"]


# --- field rules shared by REST and manifests ----------------------------------------------------------


def _search_term(value: str) -> str:
    cleaned = value.strip()
    if not cleaned or len(cleaned) > SEARCH_TERM_MAX_LENGTH or text.has_control_characters(cleaned):
        raise ValueError(f"each search term must be 1-{SEARCH_TERM_MAX_LENGTH} characters without control characters.")
    return cleaned


def check_selector(directive: str, search_terms: list[str] | None) -> None:
    """`searchTerms` is required (non-empty) for `search_terms`, and forbidden for the other directives."""
    if directive == "search_terms" and not search_terms:
        raise ValueError("searchTerms is required (and may not be empty) when directive is 'search_terms'.")
    if directive != "search_terms" and search_terms is not None:
        raise ValueError(f"searchTerms is only allowed when directive is 'search_terms', not {directive!r}.")


def validate_parameters(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """An OpenAI function-parameters object: a JSON Schema `{"type": "object", "properties": {...}}`.

    Unlike the original, every JSON Schema type is accepted (`boolean` included). `{}` means "no parameters".
    """
    if value is None or value == {}:
        return None
    if value.get("type") != "object":
        raise ValueError('parameters must be a JSON Schema object: {"type": "object", "properties": {...}}.')
    properties = value.get("properties")
    if not isinstance(properties, dict):
        raise ValueError("parameters.properties must be an object mapping each parameter to its schema.")
    for name, schema in properties.items():
        if not isinstance(schema, dict):
            raise ValueError(f"parameters.properties.{name} must be an object (a JSON Schema).")
        kind = schema.get("type")
        if kind is not None:
            kinds = kind if isinstance(kind, list) else [kind]
            if not kinds or not all(isinstance(k, str) and k in JSON_SCHEMA_TYPES for k in kinds):
                allowed = ", ".join(sorted(JSON_SCHEMA_TYPES))
                raise ValueError(f"parameters.properties.{name}.type must be one of: {allowed}.")
    required = value.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) and r in properties for r in required):
        raise ValueError("parameters.required must be a list of names declared in parameters.properties.")
    return value


SearchTerms = Annotated[
    list[Annotated[str, AfterValidator(_search_term)]],
    Field(max_length=SEARCH_TERMS_MAX, examples=[["weather", "forecast"]]),
]
Provider = Annotated[str, Field(min_length=1, max_length=255, examples=[DEFAULT_PROVIDER])]
SystemRole = Annotated[
    str, Field(max_length=SYSTEM_ROLE_MAX_LENGTH, examples=["You answer questions about the weather."])
]
ModelName = Annotated[str, Field(min_length=1, max_length=255, examples=[DEFAULT_MODEL])]
Temperature = Annotated[float, Field(ge=0.0, le=1.0, examples=[DEFAULT_TEMPERATURE])]
MaxTokens = Annotated[int, Field(ge=1, le=MAX_COMPLETION_TOKENS, examples=[DEFAULT_MAX_COMPLETION_TOKENS])]
Parameters = Annotated[
    StoredObject,
    AfterValidator(validate_parameters),
    Field(
        examples=[
            {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "The city."}},
                "required": ["city"],
            }
        ]
    ),
]
StaticData = Annotated[StoredObject, Field(examples=[{"city": "Lisbon", "conditions": "sunny"}])]
MAX_TOKENS_ALIASES = AliasChoices("maxCompletionTokens", "max_completion_tokens", "maxTokens", "max_tokens")


class _NoNulls(InputModel):
    """Partial updates: a field may be left out, but not set to null (every column here is NOT NULL)."""

    @model_validator(mode="after")
    def _no_nulls(self) -> Self:
        for field in sorted(self.model_fields_set):
            if getattr(self, field) is None:
                raise ValueError(f"{text.to_camel_case(field)} may not be null; leave it out to keep its value.")
        return self


# --- parts: inputs --------------------------------------------------------------------------------------

# Request examples, each one what Swagger UI sends when the admin executes it as is (tests/docs).
_PROMPT_EXAMPLE: dict[str, Any] = {
    "provider": DEFAULT_PROVIDER,
    "systemRole": "You answer questions about the weather.",
    "model": DEFAULT_MODEL,
    "temperature": 0.5,
    "maxCompletionTokens": 512,
}
_SELECTOR_EXAMPLE: dict[str, Any] = {"directive": "search_terms", "searchTerms": ["weather", "forecast"]}
DATA_EXAMPLE: dict[str, Any] = {
    "description": "Today's weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "The city."}},
        "required": ["city"],
    },
    "staticData": {"city": "Lisbon", "conditions": "sunny"},
}


class PromptPut(InputModel):
    """The LLM prompt settings, replaced as a whole (missing fields take their defaults)."""

    provider: Provider = DEFAULT_PROVIDER
    system_role: SystemRole = DEFAULT_SYSTEM_ROLE
    model: ModelName = DEFAULT_MODEL
    temperature: Temperature = DEFAULT_TEMPERATURE
    max_completion_tokens: MaxTokens = Field(DEFAULT_MAX_COMPLETION_TOKENS, validation_alias=MAX_TOKENS_ALIASES)

    model_config = ConfigDict(json_schema_extra={"examples": [_PROMPT_EXAMPLE]})


class PromptPatch(_NoNulls):
    """Some of the LLM prompt settings; the others keep their values (`maxTokens` is an alias)."""

    provider: Provider | None = None
    system_role: SystemRole | None = None
    model: ModelName | None = None
    temperature: Temperature | None = None
    max_completion_tokens: MaxTokens | None = Field(None, validation_alias=MAX_TOKENS_ALIASES)

    model_config = ConfigDict(json_schema_extra={"examples": [{"temperature": 0.2}]})


def search_terms_rule(value: list[str] | None, info: ValidationInfo) -> list[str] | None:
    """A field validator (on `search_terms`, declared after `directive`) so a 422 names `searchTerms`."""
    directive = info.data.get("directive")
    if directive is not None:  # an invalid directive has its own error
        check_selector(directive, value)
    return value


class SelectorPut(InputModel):
    """When the plugin is offered to the LLM: on search terms in the prompt, always, or when the LLM decides."""

    directive: Directive
    search_terms: SearchTerms | None = Field(None, validate_default=True)

    _search_terms_rule = field_validator("search_terms")(search_terms_rule)

    model_config = ConfigDict(json_schema_extra={"examples": [_SELECTOR_EXAMPLE]})


class DataPut(InputModel):
    """A static plugin's data: the function description and parameters the LLM sees, and what it returns."""

    description: Description = ""
    parameters: Parameters | None = None
    static_data: StaticData = Field(default_factory=dict)

    model_config = ConfigDict(json_schema_extra={"examples": [DATA_EXAMPLE]})


# --- plugins: inputs ------------------------------------------------------------------------------------


class PluginCreate(MetadataCreate):
    """A new plugin, owned by your profile in the acting account; its parts may be given at once."""

    plugin_class: PluginClass = "static"
    account_number: str | None = Field(
        None, description="Create in this account (one you belong to) instead of your acting account."
    )
    prompt: PromptPut | None = None
    selector: SelectorPut | None = None
    data: DataPut | None = Field(None, description="Static plugins only.")
    connection: Name | None = Field(
        None, description="SQL and API plugins: the name of a SqlConnection / ApiConnection of the plugin's account."
    )
    sql_data: SqlDataSpec | None = Field(None, description="SQL plugins only (with `connection`).")
    api_data: ApiDataSpec | None = Field(None, description="API plugins only (with `connection`).")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "weather_helper",
                    "description": "Answers questions about the weather.",
                    "version": "1.0.0",
                    "tags": ["weather"],
                    "pluginClass": "static",
                    "prompt": _PROMPT_EXAMPLE,
                    "selector": _SELECTOR_EXAMPLE,
                    "data": DATA_EXAMPLE,
                }
            ]
        }
    )


class PluginUpdate(MetadataUpdate, _NoNulls):
    """Metadata changes; parts have their own routes (`prompt/`, `selector/`, `data/`)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"description": "Answers questions about the weather in Lisbon."}]}
    )


class PluginClone(InputModel):
    """The clone's name; it is owned by your profile in the acting account (or `accountNumber`)."""

    name: Name
    account_number: str | None = None

    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "weather_helper_copy"}]})


# --- outputs ---------------------------------------------------------------------------------------------


class PluginRead(MetadataRead):
    """A plugin as a flat row (the SDK's `Plugin`)."""

    user_profile: OwnerRef
    plugin_class: str = Field(examples=["static"])
    kind: str = Field(examples=["Plugin"], description="The manifest kind: Plugin, SqlPlugin or ApiPlugin.")


class PromptRead(TimestampedRead):
    plugin_id: int
    provider: str
    system_role: str
    model: str
    temperature: float
    max_completion_tokens: int


class SelectorRead(TimestampedRead):
    plugin_id: int
    directive: str
    search_terms: list[str] | None = Field(description="Only for directive `search_terms` (null otherwise).")

    @model_validator(mode="after")
    def _terms_only_for_search_terms(self) -> Self:
        if self.directive != "search_terms":
            self.search_terms = None
        return self


class DataRead(TimestampedRead):
    plugin_id: int
    description: str
    parameters: dict[str, Any] | None
    static_data: dict[str, Any]


class ManifestMetadataRead(CamelModel):
    name: str
    description: str
    version: str
    tags: list[str]
    annotations: list[dict[str, Any]]
    plugin_class: str


class ManifestSelectorRead(CamelModel):
    directive: str
    search_terms: list[str] | None = None


class ManifestPromptRead(CamelModel):
    provider: str
    system_role: str
    model: str
    temperature: float
    max_tokens: int


class ManifestDataRead(CamelModel):
    description: str
    static_data: dict[str, Any]
    parameters: dict[str, Any] | None = None


class ManifestSpecRead(CamelModel):
    selector: ManifestSelectorRead | None
    prompt: ManifestPromptRead | None
    data: ManifestDataRead | None = None


class SqlPluginSpecRead(CamelModel):
    """A SQL plugin's spec (the SDK's `SAMSqlPluginSpec`)."""

    model_config = ConfigDict(extra="forbid")

    selector: ManifestSelectorRead | None
    prompt: ManifestPromptRead | None
    connection: str
    sql_data: ManifestSqlDataRead


class ApiPluginSpecRead(CamelModel):
    """An API plugin's spec (the SDK's `SAMApiPluginSpec`)."""

    model_config = ConfigDict(extra="forbid")

    selector: ManifestSelectorRead | None
    prompt: ManifestPromptRead | None
    connection: str
    api_data: ManifestApiDataRead


# The spec of the plugin's kind: `Plugin` (static; also a SQL or API plugin that has no data yet), `SqlPlugin`,
# `ApiPlugin`. Tried in this order: the connected specs are strict, the static one takes the rest.
PluginSpecRead = Annotated[SqlPluginSpecRead | ApiPluginSpecRead | ManifestSpecRead, Field(union_mode="left_to_right")]


class ManifestDependencyRead(CamelModel):
    kind: str
    name: str


class ManifestStatusRead(CamelModel):
    record_locator: str
    created: datetime
    modified: datetime = Field(description="The latest change of the plugin or any of its parts.")
    account_number: str
    username: str
    dependencies: list[ManifestDependencyRead] = Field(default_factory=list)


class PluginManifestRead(CamelModel):
    """A plugin's manifest, as `describe` returns it (and `apply` accepts it back)."""

    api_version: str = API_VERSION
    kind: str
    metadata: ManifestMetadataRead
    spec: PluginSpecRead
    status: ManifestStatusRead


class PluginDetail(PluginRead):
    """The flat row plus the plugin's manifest sections (`kind` is shared): the SDK reads either shape."""

    api_version: str = API_VERSION
    metadata: ManifestMetadataRead
    spec: PluginSpecRead
    status: ManifestStatusRead


class PluginListQuery(PageQuery):
    """The plugin list's query parameters: the page, the scope and the filters."""

    scope: Literal["readable", "owned"] = Field(
        "readable", description="`readable` (default) or `owned` (ownership scope)."
    )
    name: str | None = Field(None, max_length=255, description="Exact name (normalised to snake_case).")
    tag: str | None = Field(None, max_length=100, description="Plugins carrying this tag.")
    plugin_class: PluginClass | None = Field(None, alias="pluginClass")
    account_number: str | None = Field(None, alias="accountNumber", max_length=14)
