"""Tool definitions: the input schemas and the three shapes (openai, anthropic, mcp).

A tool's name is the plugin's name (snake_case, at most 50 characters: within OpenAI's `^[a-zA-Z0-9_-]{1,64}$`),
its description the data's description. SQL and API plugins declare parameters as the SDK's
`[{name, type, description, enum, default, required}]`; `declared_parameters_schema` turns them into the
object schema every LLM API takes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from app.services.plugin_runtime.kinds import JsonObject, KindRuntime
from app.services.plugins.views import PluginView

ToolFormat = Literal["openai", "anthropic", "mcp"]
TOOL_FORMATS: tuple[ToolFormat, ...] = ("openai", "anthropic", "mcp")
PARAMETER_TYPES = ("string", "number", "integer", "boolean", "object", "array", "null")


def declared_parameters_schema(parameters: Sequence[Mapping[str, Any]] | None) -> JsonObject:
    """`{"type": "object", "properties", "required", "additionalProperties": false}` from declared parameters.

    Arrays get `items: {}` (any value): OpenAI refuses an array schema without `items`.
    """
    properties: JsonObject = {}
    required: list[str] = []
    for parameter in parameters or ():
        name = str(parameter["name"])
        kind = str(parameter.get("type") or "string")
        schema: JsonObject = {"type": kind}
        if kind == "array":
            schema["items"] = {}
        if parameter.get("description"):
            schema["description"] = str(parameter["description"])
        if parameter.get("enum") is not None:
            schema["enum"] = list(parameter["enum"])
        if parameter.get("default") is not None:
            schema["default"] = parameter["default"]
        properties[name] = schema
        if parameter.get("required"):
            required.append(name)
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def humanised(name: str) -> str:
    """`get_weather` -> `Get weather` (the MCP tool's title)."""
    return name.replace("_", " ").capitalize()


def tool_definition(view: PluginView, runtime: KindRuntime, schema: JsonObject, shape: ToolFormat) -> JsonObject:
    description = runtime.description(view)
    if shape == "openai":
        return {"type": "function", "function": {"name": view.name, "description": description, "parameters": schema}}
    if shape == "anthropic":
        return {"name": view.name, "description": description, "input_schema": schema}
    return {
        "name": view.name,
        "title": humanised(view.name),
        "description": description,
        "inputSchema": schema,
        "annotations": {"readOnlyHint": runtime.read_only},
    }


# What a value of each parameter type is, strictly (a bool is no integer; `1.0` is left to the full validator).
_IS_TYPE: dict[str, Callable[[Any], bool]] = {
    "string": lambda value: type(value) is str,
    "integer": lambda value: type(value) is int,
    "number": lambda value: type(value) is int or type(value) is float,
    "boolean": lambda value: type(value) is bool,
    "object": lambda value: type(value) is dict,
    "array": lambda value: type(value) is list,
    "null": lambda value: value is None,
}
_OBJECT_KEYS = {"type", "properties", "required", "additionalProperties"}
_PROPERTY_KEYS = {"type", "description", "enum", "default", "items"}
Check = Callable[[Any], bool]


def _property_check(schema: Any) -> Check | None:
    if not isinstance(schema, dict) or not set(schema) <= _PROPERTY_KEYS or schema.get("type") not in _IS_TYPE:
        return None
    if "items" in schema and (schema["type"] != "array" or schema["items"] != {}):
        return None
    is_type = _IS_TYPE[schema["type"]]
    enum = schema.get("enum")
    if enum is None:
        return is_type
    if not isinstance(enum, list):
        return None
    choices = [(type(choice), choice) for choice in enum]
    # A value of the very type and value of a choice (jsonschema's `enum` also takes 1 for 1.0: left to it).
    return lambda value: is_type(value) and any(type(value) is kind and value == choice for kind, choice in choices)


def quick_acceptance(schema: JsonObject) -> Callable[[JsonObject], bool] | None:
    """For the object schemas tools declare (`declared_parameters_schema`, the static one): a check that says
    True only for arguments the schema's validator accepts too, so a call it accepts skips the validator (the
    validator still names the problems of any other). None for any other schema."""
    if set(schema) != _OBJECT_KEYS or schema["type"] != "object" or schema["additionalProperties"] is not False:
        return None
    properties, required = schema["properties"], schema["required"]
    if not isinstance(properties, dict) or not isinstance(required, list):
        return None
    checks: dict[str, Check] = {}
    for name, property_schema in properties.items():
        check = _property_check(property_schema)
        if check is None:
            return None
        checks[name] = check
    needed = tuple(required)

    def accepts(arguments: JsonObject) -> bool:
        for name, value in arguments.items():
            check = checks.get(name)
            if check is None or not check(value):
                return False
        return all(name in arguments for name in needed)

    return accepts
