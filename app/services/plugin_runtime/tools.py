"""A plugin's tool: its input schema, the validator its calls are checked with, its definitions.

Built from the plugin's snapshot and kept in the `plugin_tool` cache while that snapshot is the current one:
every write of a plugin replaces its snapshot (`app.caching.rules` drops it), so a tool whose
snapshot is no longer the cached one is rebuilt, and no second invalidation is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic_core import to_json

from app.caching.registry import CacheRegistry
from app.errors import Conflict
from app.services.plugin_runtime.kinds import JsonObject, KindRuntime, runtime_of
from app.services.plugin_runtime.schemas import ToolFormat, quick_acceptance, tool_definition
from app.services.plugins.snapshots import PluginSnapshot

TOOL_CACHE = "plugin_tool"
CANNOT_RUN = "Plugins of class {plugin_class} cannot be used as tools by this server yet."
BAD_SCHEMA = "This plugin's parameters are not a valid JSON Schema; fix its data."


@dataclass(slots=True)
class Tool:
    snapshot: PluginSnapshot
    runtime: KindRuntime
    schema: JsonObject
    validator: Draft202012Validator
    # True for arguments the validator accepts (None: the validator decides every call); see `quick_acceptance`.
    accepts: Callable[[JsonObject], bool] | None = None
    definitions: dict[str, JsonObject] = field(default_factory=dict)
    definitions_json: dict[str, bytes] = field(default_factory=dict)

    def definition(self, shape: ToolFormat) -> JsonObject:
        found = self.definitions.get(shape)
        if found is None:
            found = self.definitions[shape] = tool_definition(self.snapshot.view, self.runtime, self.schema, shape)
        return found

    def definition_json(self, shape: ToolFormat) -> bytes:
        """The definition as JSON text, made once (a selection's response holds up to 128 of them)."""
        found = self.definitions_json.get(shape)
        if found is None:
            found = self.definitions_json[shape] = to_json(self.definition(shape))
        return found


def runnable(snapshot: PluginSnapshot) -> bool:
    return runtime_of(snapshot.plugin_class) is not None


def tool_of(caches: CacheRegistry, snapshot: PluginSnapshot) -> Tool:
    """The plugin's tool (409 when its class has no runtime, or its parameters are no valid schema)."""
    cache = caches.register(TOOL_CACHE)
    tool: Tool | None = cache.peek(snapshot.plugin_id)
    if tool is not None and tool.snapshot is snapshot:
        return tool
    runtime = runtime_of(snapshot.plugin_class)
    if runtime is None:
        raise Conflict(CANNOT_RUN.format(plugin_class=snapshot.plugin_class))
    schema = runtime.input_schema(snapshot.view)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError:
        raise Conflict(BAD_SCHEMA) from None
    tool = Tool(snapshot, runtime, schema, Draft202012Validator(schema), quick_acceptance(schema))
    cache.put_all({snapshot.plugin_id: tool}, generation=cache.generation)
    return tool
