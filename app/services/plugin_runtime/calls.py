"""Tool calls: arguments (a plain object, or an OpenAI tool call's JSON text), validated, then executed.

Validation runs before anything executes (422 listing every problem, without echoing the values sent); the
execution is the plugin class's executor (`kinds.RUNTIMES`). The same function serves `call/`, `test/` and
MCP's `tools/call`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from jsonschema.exceptions import ValidationError

from app.documents import DocumentError, load_json
from app.errors import FieldError, Unprocessable
from app.services.plugin_runtime.kinds import CallContext, JsonObject, argument_error
from app.services.plugin_runtime.tools import Tool

MAX_ERRORS = 20
INVALID = "The arguments do not match the tool's parameters."
NOT_AN_OBJECT = "`arguments` must be a JSON object (or, in an OpenAI tool call, the JSON text of one)."
WRONG_NAME = "`name` is not this plugin's tool name."


@dataclass(frozen=True, slots=True)
class CallResult:
    result: Any
    truncated: bool
    elapsed_ms: float

    def body(self) -> JsonObject:
        return {"result": self.result, "truncated": self.truncated, "elapsedMs": self.elapsed_ms}


def arguments_of(arguments: Any, name: str | None, tool_name: str) -> JsonObject:
    """The call's arguments as an object: given as one, or as an OpenAI tool call's JSON text (422 otherwise)."""
    if name is not None and name != tool_name:
        raise Unprocessable.field("name", WRONG_NAME)
    if arguments is None:
        return {}
    if isinstance(arguments, str):
        try:
            arguments = load_json(arguments.encode()) if arguments.strip() else {}
        except DocumentError as exc:
            raise Unprocessable.field("arguments", str(exc)) from None
        except ValueError:
            raise Unprocessable.field("arguments", "`arguments` is not valid JSON text.") from None
    if not isinstance(arguments, dict):
        raise Unprocessable.field("arguments", NOT_AN_OBJECT)
    return arguments


def _message(error: ValidationError) -> tuple[list[str | int], str, str]:
    """Where and what, in words of the schema (never the value sent)."""
    path: list[str | int] = list(error.absolute_path)
    validator = str(error.validator)
    expected: Any = error.validator_value
    schema: Any = error.schema
    if validator == "required" and isinstance(error.instance, dict):
        missing = [name for name in expected if name not in error.instance]
        return [*path, *(missing[:1] or [])], "This argument is required.", "missing"
    if validator == "additionalProperties" and isinstance(error.instance, dict):
        known = schema.get("properties", {}) if isinstance(schema, dict) else {}
        extra = [name for name in error.instance if name not in known]
        return [*path, *(extra[:1] or [])], "This tool takes no such argument.", "extra_forbidden"
    if validator == "enum":
        choices = ", ".join(str(choice) for choice in expected)
        return path, f"Must be one of: {choices}.", "enum"
    if validator == "type":
        return path, f"Must be of type {expected}.", "type_error"
    return path, f"Does not satisfy `{validator}` of the tool's parameters.", "value_error"


def validate(tool: Tool, arguments: JsonObject) -> None:
    if tool.accepts is not None and tool.accepts(arguments):
        return  # what the validator would accept too, at a tenth of its cost
    errors: list[FieldError] = []
    for error in tool.validator.iter_errors(arguments):
        path, message, kind = _message(error)
        errors.append(argument_error(path, message, kind))
        if len(errors) >= MAX_ERRORS:
            break
    if errors:
        raise Unprocessable(INVALID if len(errors) > 1 else errors[0].msg, errors=errors)


async def call(tool: Tool, arguments: JsonObject, context: CallContext) -> CallResult:
    validate(tool, arguments)
    started = time.perf_counter()
    outcome = await tool.runtime.execute(tool.snapshot.view, arguments, context)
    elapsed = round((time.perf_counter() - started) * 1000, 3)
    return CallResult(outcome.result, outcome.truncated, elapsed)


async def test(tool: Tool, context: CallContext) -> CallResult:
    """The call with the plugin's test values (`KindRuntime.test_arguments`)."""
    return await call(tool, tool.runtime.test_arguments(tool.snapshot.view), context)
