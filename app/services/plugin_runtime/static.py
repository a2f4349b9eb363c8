"""The `static` class: the tool takes one required `inquiry_type`, a top-level key of `staticData`.

The original offered nested keys too (flattened) but looked up only top-level ones, so the nested ones it
offered always failed; here the enum is exactly what the call can answer. A list is cut to `LIMIT` items.
"""

from __future__ import annotations

from typing import Any

from app.errors import Conflict
from app.services.plugin_runtime.kinds import (
    CallContext,
    JsonObject,
    KindRuntime,
    Outcome,
    bad_argument,
    data_description,
    parameter_descriptions,
    register,
)
from app.services.plugins.views import PluginView

LIMIT = 50
ARGUMENT = "inquiry_type"
NO_DATA = "This static plugin has no static data to answer with; PUT its data first."


def _static_data(view: PluginView) -> dict[str, Any]:
    data = view.data
    value = data.get("static_data") if data is not None else None
    return value if isinstance(value, dict) else {}


def _keys(view: PluginView) -> list[str]:
    """The top-level keys, sorted: PostgreSQL's JSONB does not keep the order they were written in, and a tool
    must read the same on every backend."""
    return sorted(_static_data(view))


def input_schema(view: PluginView) -> JsonObject:
    keys = _keys(view)
    argument: JsonObject = {"type": "string", "description": "Which part of the plugin's data to return."}
    if keys:  # an empty enum validates nothing and some LLM APIs refuse it
        argument["enum"] = keys
    return {
        "type": "object",
        "properties": {ARGUMENT: argument},
        "required": [ARGUMENT],
        "additionalProperties": False,
    }


def search_text(view: PluginView) -> list[str]:
    data = view.data
    return parameter_descriptions(data.get("parameters")) if data is not None else []


def test_arguments(view: PluginView) -> JsonObject:
    """Static plugins have no `testValues`: the test asks for the first key of the data (sorted)."""
    keys = _keys(view)
    if not keys:
        raise Conflict(NO_DATA)
    return {ARGUMENT: keys[0]}


async def execute(view: PluginView, arguments: JsonObject, context: CallContext) -> Outcome:
    del context  # a static answer needs nothing but the plugin
    static_data = _static_data(view)
    key = arguments[ARGUMENT]
    if key not in static_data:
        raise bad_argument(ARGUMENT, "This plugin's data has no such key.")
    value = static_data[key]
    if isinstance(value, list) and len(value) > LIMIT:
        return Outcome(value[:LIMIT], truncated=True)
    return Outcome(value)


STATIC = KindRuntime(
    input_schema=input_schema,
    description=data_description,
    search_text=search_text,
    test_arguments=test_arguments,
    execute=execute,
    read_only=True,
)
register("static", STATIC)
