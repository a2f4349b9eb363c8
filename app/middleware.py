"""One small pure-ASGI guard in front of the app: path normalisation, malformed keys, the body limit."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import AppError, PayloadTooLarge, Unauthorized
from app.http_errors import render
from app.services.keys import parse_authorization

# Where `RequestGuard` leaves the key it parsed out of a `Token`/`Bearer` header (it refuses a malformed one
# before routing): read back by `app.deps.get_principal` rather than parsed twice.
PARSED_KEY = "smarter_core.key"

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def canonical_path(path: str) -> str:
    """API routes are declared with a trailing slash, the rest without; accept either spelling.

    The SDK sends `follow_redirects=False`, so the other spelling is served in place, never redirected.
    """
    if path.startswith("/api/"):
        return path if path.endswith("/") else path + "/"
    if len(path) > 1 and path.endswith("/"):
        return path.rstrip("/") or "/"
    return path


class RequestGuard:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = canonical_path(scope["path"])
        if path != scope["path"]:
            # In place: the outer middleware (`app.observe`) reads the route the router records in this scope.
            scope["path"], scope["raw_path"] = path, path.encode()
        if path.startswith("/api/") and (refusal := _parse_token(scope)) is not None:
            await self._refuse(scope, receive, send, refusal)
            return
        if scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return

        declared = _content_length(scope)
        if declared is not None:
            if declared > self.max_body_bytes:
                await self._reject(scope, receive, send)
                return
            # The server frames the body by Content-Length, so it cannot exceed what was declared.
            await self.app(scope, receive, send)
            return

        # Chunked upload: buffer up to the limit, then replay it to the app.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._reject(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.max_body_bytes // 1024
        await self._refuse(scope, receive, send, PayloadTooLarge(f"Request bodies are limited to {limit} KiB."))

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, error: AppError) -> None:
        await render(Request(scope), error)(scope, receive, send)


def _parse_token(scope: Scope) -> Unauthorized | None:
    """The 401 for a `Token`/`Bearer` header whose key cannot exist, decided before routing.

    Such a header can only be refused, by every API route (DRF refuses it on every view too, even one
    open to anyone), so it is refused here: no routing, no dependencies, no database. A well-formed key is
    left in the scope for `get_principal`. Another scheme (HTTP Basic on login) or no header at all is
    left to the route.
    """
    for name, raw in scope["headers"]:
        if name == b"authorization":
            value = raw.decode("latin-1")
            scheme = value.split(maxsplit=1)
            if not scheme or scheme[0].lower() not in ("token", "bearer"):
                return None
            try:
                scope[PARSED_KEY] = parse_authorization(value)
            except Unauthorized as refusal:
                return refusal
            return None
    return None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
