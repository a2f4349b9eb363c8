"""`/mcp`: the plugins as Model Context Protocol tools (streamable HTTP, the official `mcp` package).

The low-level `mcp.server.lowlevel.Server` answers `initialize`, `tools/list` and `tools/call`
(`app.mcp_tools`); its `StreamableHTTPSessionManager` runs **stateless** with JSON responses: every POST is
complete in itself, so any worker process can answer any request (sessions would tie a client to one
process). The manager starts on the endpoint's first request and runs until the app's lifespan ends
(`app.main.lifespan`): a worker that is never asked for MCP never imports the `mcp` package.

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
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from app.deps import get_principal, runtime_of
from app.errors import MethodNotAllowed
from app.runtime import Runtime
from app.services.principals import Principal

if TYPE_CHECKING:
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

PATH = "/mcp"
CALLER = "smarter_core.mcp_caller"
ALLOW = {"Allow": "POST"}


@dataclass(frozen=True, slots=True)
class Caller:
    principal: Principal
    runtime: Runtime
    account_number: str | None


class McpEndpoint:
    """The ASGI app at `/mcp`: authenticate (401 before any MCP message), then the session manager.

    The manager's task group (anyio) must be entered and left by one task; an app's lifespan may end in
    another task than the request that started it, so the manager runs in a task of its own, which `stop`
    ends. A manager runs once: each start makes a new one.
    """

    def __init__(self) -> None:
        self._manager: StreamableHTTPSessionManager | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._starting = asyncio.Lock()

    async def _running(self) -> StreamableHTTPSessionManager:
        """The running manager, started (and the `mcp` package imported) by the first request to need it."""
        async with self._starting:
            if self._manager is None:
                await self._start()
            assert self._manager is not None
            return self._manager

    async def _start(self) -> None:
        from app.mcp_tools import session_manager  # the `mcp` package, on first use (see the module's doc)

        # Its modules and protocol models live as long as the app, as start-up's do: out of the collector's
        # reach like those (`app.main.lifespan`), so no full collection walks them on every later request.
        gc.freeze()
        manager, self._stopping = session_manager(), asyncio.Event()
        running = asyncio.Event()

        async def run() -> None:
            async with manager.run():
                running.set()
                await self._stopping.wait()

        self._task = asyncio.create_task(run(), name="mcp-session-manager")
        started = asyncio.create_task(running.wait())
        await asyncio.wait({self._task, started}, return_when=asyncio.FIRST_COMPLETED)
        started.cancel()
        if self._task.done():
            task, self._task = self._task, None
            await task  # it failed to start: raise its error
        self._manager = manager

    async def stop(self) -> None:
        """End the manager's task, if a request started one (the app's lifespan ends)."""
        async with self._starting:
            if self._task is not None:
                self._stopping.set()
                await self._task
            self._task = self._manager = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        # Raises the app's `Unauthorized`, which its exception handlers render as a 401 problem+json.
        principal = await get_principal(request)
        if request.method != "POST":
            # Stateless and JSON-only: no server-initiated stream to GET, no session to DELETE (the transport's
            # 405 for these, as the specification allows; a GET would otherwise hold an idle stream open).
            raise MethodNotAllowed("The MCP endpoint takes POST only (stateless, JSON responses).", headers=ALLOW)
        scope[CALLER] = Caller(principal, runtime_of(request), request.query_params.get("accountNumber"))
        manager = self._manager or await self._running()
        await manager.handle_request(scope, receive, send)
