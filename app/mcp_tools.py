"""The MCP layer of `/mcp` (`app.mcp_server`): the low-level `mcp` server and its `tools/list` and `tools/call`.

Imported on the endpoint's first request, not at start-up: the `mcp` package and its protocol models are a
fifth of an idle worker's memory, and most deployments never call `/mcp`.
"""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from starlette.requests import Request

from app import __version__
from app.errors import AppError
from app.mcp_server import CALLER, Caller
from app.services import plugin_runtime

PAGE_SIZE = 100
INVALID_PARAMS = -32602
UNKNOWN_TOOL = "No tool with this name is visible to you."


def _caller(ctx: ServerRequestContext[Any, Any]) -> Caller:
    request = ctx.request
    caller = request.scope.get(CALLER) if isinstance(request, Request) else None
    if not isinstance(caller, Caller):  # every request passes `McpEndpoint` first
        raise MCPError(INVALID_PARAMS, "This request was not authenticated.")
    return caller


async def _indexes(caller: Caller) -> list[plugin_runtime.index.AccountIndex]:
    runtime = caller.runtime
    account_id = await plugin_runtime.acting_account_id(
        runtime.sessionmaker, caller.principal, caller.account_number, where="query"
    )
    return await plugin_runtime.scope_indexes(runtime.reader, runtime.caches, caller.principal, account_id)


def _page_start(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit() or len(cursor) > 9:
        raise MCPError(INVALID_PARAMS, "Invalid cursor.")
    return int(cursor)


async def list_tools(
    ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    caller = _caller(ctx)
    start = _page_start(params.cursor if params is not None else None)
    try:
        plugins = list(plugin_runtime.visible(await _indexes(caller)))
    except AppError as exc:
        raise MCPError(INVALID_PARAMS, exc.detail) from None
    page = plugins[start : start + PAGE_SIZE]
    caches = caller.runtime.caches
    tools = [types.Tool.model_validate(plugin.tool(caches).definition("mcp")) for plugin in page]
    more = start + PAGE_SIZE < len(plugins)
    return types.ListToolsResult(tools=tools, next_cursor=str(start + PAGE_SIZE) if more else None)


def _failure(error: AppError) -> types.CallToolResult:
    details = [f"{'.'.join(str(part) for part in item.loc[2:] or item.loc)}: {item.msg}" for item in error.errors or []]
    text = " ".join([error.detail, *details]) if details and details != [error.detail] else error.detail
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)


async def call_tool(ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams) -> types.CallToolResult:
    caller = _caller(ctx)
    runtime = caller.runtime
    try:
        plugin = plugin_runtime.find_by_name(await _indexes(caller), params.name)
        if plugin is None:
            return types.CallToolResult(content=[types.TextContent(text=UNKNOWN_TOOL)], is_error=True)
        tool = plugin.tool(runtime.caches)
        context = runtime.call_context(caller.principal)
        result = await plugin_runtime.call(tool, dict(params.arguments or {}), context)
    except AppError as exc:
        return _failure(exc)
    body = result.body()
    return types.CallToolResult(
        content=[types.TextContent(text=json.dumps(result.result, ensure_ascii=False))],
        structured_content=body,
        is_error=False,
    )


def build_server() -> Server[Any]:
    server: Server[Any] = Server(
        "smarter-core",
        version=__version__,
        title="smarter-core plugins",
        instructions="Each tool is a Smarter plugin you can read; call it with the arguments its schema declares.",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
    # The package wraps every message in an OpenTelemetry span by default ("drop it from this list to opt out"):
    # this service does not trace (FastAPI's telemetry is off too, `app.main`), and the span cost a tenth of a call.
    server.middleware.clear()
    return server


def session_manager(server: Server[Any]) -> StreamableHTTPSessionManager:
    """A new manager of `server` (one runs once): stateless, JSON responses."""
    return StreamableHTTPSessionManager(server, json_response=True, stateless=True)
