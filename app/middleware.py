"""One small pure-ASGI guard in front of the app: path normalisation and the request body limit."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PayloadTooLarge, render

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


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
            scope = {**scope, "path": path, "raw_path": path.encode()}
        if scope["method"] not in _BODY_METHODS:
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
        response = render(Request(scope), PayloadTooLarge(f"Request bodies are limited to {limit} KiB."))
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
