"""What the runtime needs of each plugin class: one `KindRuntime` per `pluginClass`, registered here.

The selection, the tool definitions and the tool calls dispatch on the plugin's class through `RUNTIMES`:
`static` is registered by `app.services.plugin_runtime.static`; the SQL and API classes register theirs the
same way (`register("sql", KindRuntime(...))`) from their own modules, imported by this package's
`__init__`. A class without a registered runtime is never selected, and its tool and calls answer 409.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.caching.registry import CacheRegistry
from app.config import Settings
from app.errors import FieldError, Unprocessable
from app.reads import Reader
from app.services.connections.pools import ConnectionPools
from app.services.plugins.views import PluginView
from app.services.principals import Principal
from app.services.secrets.cipher import SecretCipher

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallContext:
    """What an executor may use besides the plugin and its arguments (connections, secrets, the network
    policy): the caller, the app's engine and reader, its caches and settings."""

    principal: Principal
    engine: AsyncEngine
    reader: Reader
    caches: CacheRegistry
    settings: Settings
    # SQL and API plugins: the process's outbound connections (network policy included), the secrets' cipher,
    # and sessions to read a connection and reveal its secret (`writer_sessionmaker`: revealing stamps it).
    pools: ConnectionPools | None = None
    cipher: SecretCipher | None = None
    sessionmaker: async_sessionmaker[AsyncSession] | None = None
    writer_sessionmaker: async_sessionmaker[AsyncSession] | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """An executor's answer: the JSON-safe result and whether it was cut to the plugin's limit."""

    result: Any
    truncated: bool = False


# (plugin view, validated arguments, context) -> outcome; raises an `AppError` (422, 409, 502, 504) on failure.
Executor = Callable[[PluginView, JsonObject, CallContext], Awaitable[Outcome]]


@dataclass(frozen=True, slots=True)
class KindRuntime:
    """One plugin class's runtime.

    - `input_schema(view)`: the tool's parameters as a JSON Schema object (what arguments are validated against);
    - `description(view)`: the tool's description (the data's description);
    - `search_text(view)`: extra text the `llm` ranking reads (parameter descriptions);
    - `test_arguments(view)`: the arguments `test/` runs with (the plugin's `testValues`);
    - `execute`: the call itself;
    - `read_only`: the MCP `readOnlyHint`.
    """

    input_schema: Callable[[PluginView], JsonObject]
    description: Callable[[PluginView], str]
    search_text: Callable[[PluginView], list[str]]
    test_arguments: Callable[[PluginView], JsonObject]
    execute: Executor
    read_only: bool


RUNTIMES: dict[str, KindRuntime] = {}


def register(plugin_class: str, runtime: KindRuntime) -> None:
    RUNTIMES[plugin_class] = runtime


def runtime_of(plugin_class: str) -> KindRuntime | None:
    return RUNTIMES.get(plugin_class)


def data_description(view: PluginView) -> str:
    """The data's description, else the plugin's own (a tool needs one to be chosen)."""
    data = view.data
    described = str(data.get("description") or "") if data is not None else ""
    return described or view.description


def parameter_descriptions(parameters: Any) -> list[str]:
    """The descriptions in declared parameters (a list of `{name, description, ...}`) or a JSON Schema object."""
    if isinstance(parameters, list):
        items: list[Any] = parameters
    elif isinstance(parameters, Mapping) and isinstance(parameters.get("properties"), Mapping):
        items = list(parameters["properties"].values())
    else:
        return []
    return [str(item["description"]) for item in items if isinstance(item, Mapping) and item.get("description")]


def argument_error(path: list[str | int], message: str, kind: str = "value_error") -> FieldError:
    """An error located in the call's `arguments` (as the REST body names them)."""
    return FieldError(loc=["body", "arguments", *path], msg=message, type=kind)


def bad_argument(name: str, message: str) -> Unprocessable:
    return Unprocessable(message, errors=[argument_error([name], message)])
