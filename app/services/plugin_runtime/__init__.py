"""The plugin runtime: choose the plugins for a prompt, describe them as tools, answer their tool calls.

One job per module (imports run down this list):

- `words`: text normalisation and search-term matching (whole words, any order, one edit for long words).
- `bm25`: the relevance ranking of `llm` plugins.
- `kinds`: one `KindRuntime` per plugin class (schema, description, test values, executor), registered.
- `schemas`: tool input schemas and the openai / anthropic / mcp tool shapes.
- `static`: the `static` class's runtime.
- `connected`, `sql`, `api`: the `sql` and `api` classes' runtimes (connection, secret, executors).
- `tools`: a plugin's tool (schema, validator, definitions), cached with its snapshot.
- `calls`: arguments, validation, execution (`call/`, `test/`, MCP `tools/call`).
- `index`: an account's matching index, cached and dropped with the plugin snapshots.
- `selection`: the selection and the scope it reads (the acting account's and the platform's plugins).
"""

from app.services.plugin_runtime import api as _api  # noqa: F401 - registers the api runtime
from app.services.plugin_runtime import index
from app.services.plugin_runtime import sql as _sql  # noqa: F401 - registers the sql runtime
from app.services.plugin_runtime import static as _static  # noqa: F401 - registers the static runtime
from app.services.plugin_runtime.calls import CallResult, arguments_of, call, test
from app.services.plugin_runtime.kinds import CallContext, KindRuntime, Outcome, register
from app.services.plugin_runtime.schemas import TOOL_FORMATS, ToolFormat, declared_parameters_schema
from app.services.plugin_runtime.selection import acting_account_id, find_by_name, scope_indexes, selection, visible
from app.services.plugin_runtime.tools import Tool, runnable, tool_of

__all__ = [
    "TOOL_FORMATS",
    "CallContext",
    "CallResult",
    "KindRuntime",
    "Outcome",
    "Tool",
    "ToolFormat",
    "acting_account_id",
    "arguments_of",
    "call",
    "declared_parameters_schema",
    "find_by_name",
    "index",
    "register",
    "runnable",
    "scope_indexes",
    "selection",
    "test",
    "tool_of",
    "visible",
]
