"""`/mcp`: the plugins as Model Context Protocol tools (streamable HTTP, the official `mcp` package).

The low-level `mcp.server.lowlevel.Server` answers `initialize`, `tools/list` and `tools/call`; its
`StreamableHTTPSessionManager` runs **stateless** with JSON responses: every POST is complete in itself, so
any worker process can answer any request (sessions would tie a client to one process). The manager's task
group runs inside the app's lifespan (`app.main.lifespan`). A well-formed request skips the manager's
per-request transport and server task: `app.mcp_exchange` answers it in its own task, the same way.

`McpEndpoint` authenticates before the MCP layer sees a byte: `Authorization: Bearer <key>` or
`Token <key>` through the app's own key authentication (`app.deps.get_principal`); a missing or bad key is
the app's 401 problem+json. The caller rides in the ASGI scope, which the handlers read back from the
request the MCP context carries. The tools are the plugins of the caller's acting account (its first one,
or `?accountNumber=`) and the platform's, as in a selection: never another tenant's.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from app import __version__, mcp_exchange
from app.deps import get_principal, runtime_of
from app.errors import AppError, MethodNotAllowed
from app.runtime import Runtime
from app.services import plugin_runtime
from app.services.principals import Principal

PATH = "/mcp"
PAGE_SIZE = 100
CALLER = "smarter_core.mcp_caller"
INVALID_PARAMS = -32602
UNKNOWN_TOOL = "No tool with this name is visible to you."
ALLOW = {"Allow": "POST"}


@dataclass(frozen=True, slots=True)
class Caller:
    principal: Principal
    runtime: Runtime
    account_number: str | None


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


def _manager(server: Server[Any]) -> StreamableHTTPSessionManager:
    return StreamableHTTPSessionManager(server, json_response=True, stateless=True)


def _replayed(body: bytes) -> Receive:
    """A `receive` that hands the body already read to the session manager once more."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


class McpEndpoint:
    """The ASGI app at `/mcp`: authenticate (401 before any MCP message), then answer.

    A well-formed request (one JSON-RPC request, JSON in and accepted, a handshake-era protocol version) is
    answered in the request's own task (`app.mcp_exchange`); anything else goes to the session manager, whose
    transport answers every odd case as the package does.

    The manager's task group (anyio) must be entered and left by one task; an app's lifespan may start in one
    task and end in another (a test's session fixture does), so `start` runs it in a task of its own, which
    `stop` ends. A manager runs once: each start makes a new one.
    """

    def __init__(self) -> None:
        self.server = build_server()
        self.manager = _manager(self.server)
        self.lifespan_state: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        self.manager, self._stopping = _manager(self.server), asyncio.Event()
        running = asyncio.Event()

        async def run() -> None:
            async with self.manager.run(), self.server.lifespan(self.server) as state:
                self.lifespan_state = state
                running.set()
                await self._stopping.wait()

        self._task = asyncio.create_task(run(), name="mcp-session-manager")
        started = asyncio.create_task(running.wait())
        await asyncio.wait({self._task, started}, return_when=asyncio.FIRST_COMPLETED)
        started.cancel()
        if self._task.done():
            await self._task  # it failed to start: raise its error

    async def stop(self) -> None:
        if self._task is not None:
            self._stopping.set()
            await self._task
            self._task = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        # Raises the app's `Unauthorized`, which its exception handlers render as a 401 problem+json.
        principal = await get_principal(request)
        if request.method != "POST":
            # Stateless and JSON-only: no server-initiated stream to GET, no session to DELETE (the transport's
            # 405 for these, as the specification allows; a GET would otherwise hold an idle stream open).
            raise MethodNotAllowed("The MCP endpoint takes POST only (stateless, JSON responses).", headers=ALLOW)
        scope[CALLER] = Caller(principal, runtime_of(request), request.query_params.get("accountNumber"))
        body = await request.body()
        answer = None
        if len(body) <= self.manager.max_request_body_size:
            answer = await mcp_exchange.answer(self.server, self.lifespan_state, request, body)
        if answer is None:
            await self.manager.handle_request(scope, _replayed(body), send)
        else:
            await answer(scope, receive, send)
