"""One MCP request answered in the HTTP request's own task: what the stateless session manager does, without
its per-request machinery.

For every POST the manager's stateless mode builds a transport, starts a server task in its task group, a
JSON-RPC dispatcher and memory streams between them, and tears all of it down again: two thirds of the CPU of
a `tools/call` of a static plugin. The request itself is one call of the package's own single-exchange driver
(`mcp.server.runner.serve_one`, public) on a born-ready connection, as the manager makes it
(`Connection.from_envelope` with the request's protocol version). So a request that can only be served one
way is served here; `answer` returns None for anything else (a notification, a response, a batch, a body that
does not parse or validate, another content type, JSON not acceptable, a protocol version outside the
handshake era, `initialize`), and the caller hands it to the manager, whose transport answers it as before.

The back-channel is closed, as in the manager's JSON-response mode: a handler's notification has no wire
(dropped), a server-initiated request raises `NoBackChannelError`. A handler error maps through the package's
`handler_exception_to_error_data`; any other exception is logged and answered as an internal error, without
its text.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp_types as types
from mcp.server.connection import Connection
from mcp.server.lowlevel import Server
from mcp.server.runner import serve_one
from mcp.server.streamable_http import check_accept_headers
from mcp.shared.dispatcher import CallOptions
from mcp.shared.exceptions import NoBackChannelError
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp.shared.jsonrpc_dispatcher import handler_exception_to_error_data
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import ValidationError
from pydantic_core import from_json
from starlette.requests import Request
from starlette.responses import Response

logger = logging.getLogger(__name__)

JSON = "application/json"
INTERNAL = types.ErrorData(code=types.INTERNAL_ERROR, message="Internal server error")


@dataclass
class _Exchange:
    """The dispatch context of one request whose answer is the response body (no back-channel)."""

    request_id: types.RequestId
    message_metadata: ServerMessageMetadata
    transport: TransportContext = field(
        default_factory=lambda: TransportContext(kind="streamable-http", can_send_request=False)
    )
    cancel_requested: anyio.Event = field(default_factory=anyio.Event)
    can_send_request: bool = False

    async def send_raw_request(
        self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None
    ) -> dict[str, Any]:
        raise NoBackChannelError(method)

    async def notify(self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None) -> None:
        return None  # a JSON response carries the answer only

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        return None


def _request_of(request: Request, body: bytes) -> tuple[types.JSONRPCRequest, str] | None:
    """The JSON-RPC request and its protocol version, when the request is one this module answers."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != JSON or not check_accept_headers(request)[0]:
        return None
    version = request.headers.get(MCP_PROTOCOL_VERSION_HEADER)
    if version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS:
        return None
    try:
        message = types.jsonrpc_message_adapter.validate_python(from_json(body), by_name=False)
    except (ValueError, ValidationError):
        return None
    if not isinstance(message, types.JSONRPCRequest) or message.method == "initialize":
        return None
    return message, version if version is not None else types.DEFAULT_NEGOTIATED_VERSION


async def answer(server: Server[Any], lifespan_state: Any, request: Request, body: bytes) -> Response | None:
    """The response to the request, or None when the session manager is to answer it."""
    found = _request_of(request, body)
    if found is None:
        return None
    message, version = found
    context = _Exchange(message.id, ServerMessageMetadata(request_context=request, can_send_request=False))
    connection = Connection.from_envelope(version, None, None)
    reply: types.JSONRPCResponse | types.JSONRPCError
    try:
        result = await serve_one(
            server, context, message.method, message.params, connection=connection, lifespan_state=lifespan_state
        )
        reply = types.JSONRPCResponse(jsonrpc="2.0", id=message.id, result=result)
    except Exception as exc:
        error = handler_exception_to_error_data(exc)
        if error is None:
            logger.exception("MCP handler for %r raised", message.method)
            error = INTERNAL
        reply = types.JSONRPCError(jsonrpc="2.0", id=message.id, error=error)
    return Response(reply.model_dump_json(by_alias=True, exclude_unset=True), media_type=JSON)
