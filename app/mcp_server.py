"""`/mcp`: the plugins as Model Context Protocol tools (streamable HTTP, the official `mcp` package).

The low-level `mcp.server.lowlevel.Server` answers `initialize`, `tools/list` and `tools/call`
(`app.mcp_tools`); its `StreamableHTTPSessionManager` runs **stateless** with JSON responses: every POST is
complete in itself, so any worker process can answer any request (sessions would tie a client to one
process). A well-formed request skips the manager's per-request transport and server task:
`app.mcp_exchange` answers it in its own task, the same way. The server and its manager start on the
endpoint's first request and run until the app's lifespan ends (`app.main.lifespan`): a worker that is never
asked for MCP never imports the `mcp` package.

`McpEndpoint` authenticates before the MCP layer sees a byte: `Authorization: Bearer <key>` or
`Token <key>` through the app's own key authentication (`app.deps.get_principal`); a missing or bad key is
the app's 401 problem+json. The caller rides in the ASGI scope, which the handlers read back from the
request the MCP context carries. The tools are the plugins of the caller's acting account (its first one,
or `?accountNumber=`) and the platform's, as in a selection: never another tenant's.
"""

from __future__ import annotations

import asyncio
import gc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from app.deps import get_principal, runtime_of
from app.errors import MethodNotAllowed
from app.runtime import Runtime
from app.services.principals import Principal

if TYPE_CHECKING:
    from mcp.server.lowlevel import Server
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

PATH = "/mcp"
CALLER = "smarter_core.mcp_caller"
ALLOW = {"Allow": "POST"}


@dataclass(frozen=True, slots=True)
class Caller:
    principal: Principal
    runtime: Runtime
    account_number: str | None


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


@dataclass(slots=True)
class _Running:
    """The MCP server, its session manager and its lifespan state while the manager's task runs."""

    server: Server[Any]
    manager: StreamableHTTPSessionManager
    lifespan_state: Any
    task: asyncio.Task[None]
    stopping: asyncio.Event


class McpEndpoint:
    """The ASGI app at `/mcp`: authenticate (401 before any MCP message), then answer.

    A well-formed request (one JSON-RPC request, JSON in and accepted, a handshake-era protocol version) is
    answered in the request's own task (`app.mcp_exchange`); anything else goes to the session manager, whose
    transport answers every odd case as the package does.

    The manager's task group (anyio) must be entered and left by one task; an app's lifespan may end in
    another task than the request that started it, so the manager runs in a task of its own, which `stop`
    ends. A manager runs once: each start makes a new one.
    """

    def __init__(self) -> None:
        self._running: _Running | None = None
        self._starting = asyncio.Lock()

    async def _started(self) -> _Running:
        """The running server, started (and the `mcp` package imported) by the first request to need it."""
        async with self._starting:
            if self._running is None:
                self._running = await self._start()
            return self._running

    @staticmethod
    async def _start() -> _Running:
        from app.mcp_tools import build_server, session_manager  # the `mcp` package, on first use

        # Its modules and protocol models live as long as the app, as start-up's do: out of the collector's
        # reach like those (`app.main.lifespan`), so no full collection walks them on every later request.
        gc.freeze()
        server = build_server()
        manager, stopping = session_manager(server), asyncio.Event()
        running = asyncio.Event()
        states: list[Any] = []

        async def run() -> None:
            async with manager.run(), server.lifespan(server) as state:
                states.append(state)
                running.set()
                await stopping.wait()

        task = asyncio.create_task(run(), name="mcp-session-manager")
        started = asyncio.create_task(running.wait())
        await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
        started.cancel()
        if task.done():
            await task  # it failed to start: raise its error
        return _Running(server, manager, states[0], task, stopping)

    async def stop(self) -> None:
        """End the manager's task, if a request started one (the app's lifespan ends)."""
        async with self._starting:
            running, self._running = self._running, None
            if running is not None:
                running.stopping.set()
                await running.task

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        # Raises the app's `Unauthorized`, which its exception handlers render as a 401 problem+json.
        principal = await get_principal(request)
        if request.method != "POST":
            # Stateless and JSON-only: no server-initiated stream to GET, no session to DELETE (the transport's
            # 405 for these, as the specification allows; a GET would otherwise hold an idle stream open).
            raise MethodNotAllowed("The MCP endpoint takes POST only (stateless, JSON responses).", headers=ALLOW)
        scope[CALLER] = Caller(principal, runtime_of(request), request.query_params.get("accountNumber"))
        running = self._running or await self._started()
        from app import mcp_exchange  # imported with the `mcp` package by `_start`

        body = await request.body()
        answer = None
        if len(body) <= running.manager.max_request_body_size:
            answer = await mcp_exchange.answer(running.server, running.lifespan_state, request, body)
        if answer is None:
            await running.manager.handle_request(scope, _replayed(body), send)
        else:
            await answer(scope, receive, send)
