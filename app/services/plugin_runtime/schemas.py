"""Tool definitions: the input schemas and the three shapes (openai, anthropic, mcp).

A tool's name is the plugin's name (snake_case, at most 50 characters: within OpenAI's `^[a-zA-Z0-9_-]{1,64}$`),
its description the data's description. SQL and API plugins declare parameters as the SDK's
`[{name, type, description, enum, default, required}]`; `declared_parameters_schema` turns them into the
object schema every LLM API takes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
