"""The data of SQL and API plugins (the SDK's `SqlData` and `ApiData`): inputs, outputs and their field rules.

Shared by REST (`POST /plugins/`, `PUT {id}/data/`) and the `SqlPlugin`/`ApiPlugin` manifests. A `{name}`
placeholder (an identifier in braces) in `sqlQuery`, `endpoint`, `urlParams` and `headers` values and the string
values of `body` must name a declared parameter; other braces are plain text. `description` is this service's
addition (the SDK keeps unknown fields, so it round-trips): the tool description, or the plugin's own
description when empty.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AliasChoices, BeforeValidator, Field, ValidationInfo, field_validator

from app import documents, text
from app.models.plugin import API_METHODS, DATA_LIMIT_MAX, DEFAULT_DATA_LIMIT
from app.schemas.base import CamelModel, Description, InputModel, Name, TimestampedRead

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# RFC 9110 token characters: what a header name may hold.
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,255}")
PARAMETER_TYPES = ("string", "number", "integer", "boolean", "object", "array", "null")
PARAMETERS_MAX = 100

ApiMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
assert set(API_METHODS) == {"GET", "POST", "PUT", "PATCH", "DELETE"}
Scalar = str | int | float | bool


def placeholders(value: Any) -> set[str]:
    """The placeholder names in `value` (a string, or the strings anywhere inside a JSON value)."""
    if isinstance(value, str):
        return set(PLACEHOLDER.findall(value))
    if isinstance(value, dict):
        return set().union(*(placeholders(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(placeholders(v) for v in value)) if value else set()
    return set()


def _stored(value: Any) -> Any:
    try:
        return documents.check_stored(value)
    except documents.DocumentError as exc:
        raise ValueError(str(exc)) from None


def _no_control(value: str) -> str:
    if text.has_control_characters(value):
        raise ValueError("may not contain control characters (newlines, tabs).")
    return value


def _identifier(value: str) -> str:
    if not IDENTIFIER.fullmatch(value):
        raise ValueError("must be an identifier: a letter or _, then letters, digits or _ (at most 64).")
    return value


def _header_name(value: str) -> str:
    if not HEADER_NAME.fullmatch(value):
        raise ValueError("must be an HTTP header name (letters, digits and !#$%&'*+.^_`|~-).")
    return value


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _endpoint(value: str) -> str:
    _no_control(value)
    if value and not value.startswith("/"):
        raise ValueError("must be a path starting with '/' (it is appended to the connection's baseUrl).")
    if " " in value:
        raise ValueError("may not contain spaces (use a placeholder or %20).")
    return value


class Parameter(InputModel):
    """A declared parameter: the tool's argument (`{name}` in the query, endpoint, params, headers, body)."""

    name: Annotated[str, AfterValidator(_identifier)]
    type: Literal["string", "number", "integer", "boolean", "object", "array", "null"] = "string"
    description: Annotated[str, Field(max_length=4096)] | None = None
    enum: Annotated[list[Scalar], Field(min_length=1, max_length=500)] | None = None
    default: Any = None
    required: bool = False


class TestValue(InputModel):
    name: str
    value: Any = None


class UrlParam(InputModel):
    key: Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_no_control)]
    value: Scalar


class RequestHeader(InputModel):
    name: Annotated[str, AfterValidator(_header_name)]
    value: Scalar

    @field_validator("value")
    @classmethod
    def _no_line_breaks(cls, value: Scalar) -> Scalar:
        if isinstance(value, str) and not value.isascii():
            raise ValueError("must be ASCII text (HTTP header values are).")
        return _no_control(value) if isinstance(value, str) else value


Parameters = Annotated[list[Parameter], Field(max_length=PARAMETERS_MAX)]
Limit = Annotated[int, Field(ge=1, le=DATA_LIMIT_MAX)]


def _declared(info: ValidationInfo) -> set[str] | None:
    """The parameter names declared before this field; None when `parameters` itself was invalid."""
    if "parameters" not in info.data:
        return None
    return {parameter.name for parameter in info.data["parameters"] or []}


_PAIRS = frozenset({"url_params", "headers"})


def check_placeholders(value: Any, info: ValidationInfo) -> Any:
    """A field validator: every `{name}` placeholder in the value is a declared parameter."""
    declared = _declared(info)
    if declared is not None:
        # In `urlParams` and `headers`, the values hold placeholders (not the keys or header names).
        texts = [item.value for item in value] if isinstance(value, list) and info.field_name in _PAIRS else value
        unknown = sorted(placeholders(texts) - declared)
        if unknown:
            names = ", ".join(f"{{{name}}}" for name in unknown)
            raise ValueError(f"uses undeclared placeholder(s) {names}; declare each in parameters.")
    return value


def check_parameters(value: list[Parameter] | None) -> list[Parameter] | None:
    names = [parameter.name for parameter in value or []]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"declares {', '.join(duplicates)} more than once.")
    return value


def check_test_values(value: list[TestValue] | None, info: ValidationInfo) -> list[TestValue] | None:
    declared = _declared(info)
    if declared is not None and value:
        unknown = sorted({item.name for item in value} - declared)
        if unknown:
            raise ValueError(f"names undeclared parameter(s) {', '.join(unknown)}.")
    return value


class _ConnectedDataSpec(InputModel):
    # Declared first: the placeholder and test-value rules of the fields below read the declared names.
    parameters: Parameters | None = None
    description: Description = ""
    limit: Limit = DEFAULT_DATA_LIMIT

    _parameters_rule = field_validator("parameters")(check_parameters)


class SqlDataSpec(_ConnectedDataSpec):
    """`sqlData`: the query, with a `{name}` placeholder (a bound parameter) for each argument."""

    sql_query: Annotated[str, Field(min_length=1, max_length=65536)]
    test_values: list[TestValue] | None = None

    _placeholders_rule = field_validator("sql_query")(check_placeholders)
    _test_values_rule = field_validator("test_values")(check_test_values)


class ApiDataSpec(_ConnectedDataSpec):
    """`apiData`: the request the plugin sends to its connection's `baseUrl`."""

    endpoint: Annotated[str, Field(max_length=255), AfterValidator(_endpoint)]
    method: Annotated[ApiMethod, BeforeValidator(_upper)] = "GET"
    url_params: Annotated[list[UrlParam], Field(max_length=100)] | None = None
    headers: Annotated[list[RequestHeader], Field(max_length=100)] | None = None
    body: Annotated[dict[str, Any] | list[Any], AfterValidator(_stored)] | None = None
    test_values: list[TestValue] | None = None

    _placeholders_rule = field_validator("endpoint", "url_params", "headers", "body")(check_placeholders)
    _test_values_rule = field_validator("test_values")(check_test_values)


class SqlDataPut(SqlDataSpec):
    """`PUT {id}/data/` of a SQL plugin: its connection (a SqlConnection's name in the plugin's account) and data."""

    connection: Name


class ApiDataPut(ApiDataSpec):
    """`PUT {id}/data/` of an API plugin: its connection (an ApiConnection's name in the plugin's account) and data."""

    connection: Name


def sql_data_values(data: SqlDataSpec, connection_id: int) -> dict[str, Any]:
    """The `plugin_data_sql` columns for `data`."""
    return {
        "connection_id": connection_id,
        "description": data.description,
        "sql_query": data.sql_query,
        "parameters": _dumped(data.parameters),
        "test_values": _dumped(data.test_values),
        "result_limit": data.limit,
    }


def api_data_values(data: ApiDataSpec, connection_id: int) -> dict[str, Any]:
    """The `plugin_data_api` columns for `data`."""
    return {
        "connection_id": connection_id,
        "description": data.description,
        "endpoint": data.endpoint,
        "method": data.method,
        "url_params": _dumped(data.url_params),
        "headers": _dumped(data.headers),
        "body": data.body,
        "parameters": _dumped(data.parameters),
        "test_values": _dumped(data.test_values),
        "result_limit": data.limit,
    }


def _dumped(items: list[Parameter] | list[TestValue] | list[UrlParam] | list[RequestHeader] | None) -> Any:
    if items is None:
        return None
    return [item.model_dump(exclude_none=True) for item in items]


# --- outputs ---------------------------------------------------------------------------------------------


class SqlDataRead(TimestampedRead):
    plugin_id: int
    connection: str
    description: str
    sql_query: str
    parameters: list[dict[str, Any]] | None
    test_values: list[dict[str, Any]] | None
    # The column is `result_limit` (`limit` is an SQL keyword); the wire name is `limit`.
    limit: int = Field(validation_alias=AliasChoices("result_limit", "limit"))


class ApiDataRead(TimestampedRead):
    plugin_id: int
    connection: str
    description: str
    endpoint: str
    method: str
    url_params: list[dict[str, Any]] | None
    headers: list[dict[str, Any]] | None
    body: dict[str, Any] | list[Any] | None
    parameters: list[dict[str, Any]] | None
    test_values: list[dict[str, Any]] | None
    # The column is `result_limit` (`limit` is an SQL keyword); the wire name is `limit`.
    limit: int = Field(validation_alias=AliasChoices("result_limit", "limit"))


class ManifestSqlDataRead(CamelModel):
    description: str | None = None
    sql_query: str
    parameters: list[dict[str, Any]] | None = None
    test_values: list[dict[str, Any]] | None = None
    limit: int


class ManifestApiDataRead(CamelModel):
    description: str | None = None
    endpoint: str
    method: str
    url_params: list[dict[str, Any]] | None = None
    headers: list[dict[str, Any]] | None = None
    body: dict[str, Any] | list[Any] | None = None
    parameters: list[dict[str, Any]] | None = None
    test_values: list[dict[str, Any]] | None = None
    limit: int
