"""Request ids, the access log and the request metrics, in one pure-ASGI middleware; the log configuration.

`Observe` is the outermost middleware: every response, early refusals included, carries `X-Request-ID`
and is counted and logged once. It costs a request a few microseconds (README "Operating it").
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
import re
import sys
from datetime import UTC, datetime
from random import getrandbits
from time import perf_counter
from typing import Any, Literal

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics
from app.config import Settings
from app.http_errors import REQUEST_ID_KEY

ACCESS_LOGGER = "app.access"
access_logger = logging.getLogger(ACCESS_LOGGER)

# Where the request's id and, once authenticated, its principal are kept in the ASGI scope.
REQUEST_ID = REQUEST_ID_KEY
PRINCIPAL = "smarter_core.principal"
REQUEST_ID_HEADER = b"x-request-id"
# A client's id is kept when it is 1 to 128 visible ASCII characters (no spaces, no controls): safe to echo
# in a header and a log line as is. Anything else is replaced by a generated one.
_VALID_REQUEST_ID = re.compile(rb"[\x21-\x7e]{1,128}")


def request_id_of(scope: Scope) -> str | None:
    value = scope.get(REQUEST_ID)
    return value if isinstance(value, str) else None


def _request_id(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            if _VALID_REQUEST_ID.fullmatch(value):
                return value.decode("ascii")
            break
    # 128 random bits from the process's generator (seeded from the OS in each worker): unique enough to
    # find a request by, and a tenth of uuid4's cost (which reads the OS's entropy on every call).
    return f"{getrandbits(128):032x}"


def route_template(scope: Scope) -> str:
    """The matched route's template (`/api/v1/plugins/{id}/`), or `unmatched` (404s, and refusals decided
    before routing): never a path with an id in it, which would give every id its own series."""
    route = scope.get("route")  # FastAPI's routes
    template = getattr(route, "path_format", None)
    if isinstance(template, str):
        return template
    if "endpoint" in scope:  # Starlette's (the document, the docs' assets): no parameters but a mount's path
        if "app_root_path" in scope:
            return f"{scope['root_path']}/{{path}}"
        if not scope.get("path_params"):
            return str(scope["path"])
    return metrics.UNMATCHED


class Observe:
    def __init__(self, app: ASGIApp, *, with_metrics: bool) -> None:
        self.app = app
        self.request_metrics = metrics.RequestMetrics() if with_metrics else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        request_id = _request_id(scope["headers"])
        scope[REQUEST_ID] = request_id
        header = (REQUEST_ID_HEADER, request_id.encode("ascii"))
        status = 500  # if the app raises before answering, the server answers 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = perf_counter() - started
            route = route_template(scope)
            if self.request_metrics is not None:
                self.request_metrics.observe(route, scope["method"], status, seconds)
            if access_logger.isEnabledFor(logging.INFO):
                _log_access(scope, route, status, seconds, request_id)


# What a key, a digest or a password hash looks like: a client that puts one in a URL or a request id by
# mistake must not find it in the logs.
_SECRET_SHAPED = re.compile(r"[0-9A-Fa-f]{32,}|\$argon2(?:id|i|d)\$|\$2[aby]\$\d\d\$")


def _redacted(text: str) -> str:
    return _SECRET_SHAPED.sub("[redacted]", text)


def _log_access(scope: Scope, route: str, status: int, seconds: float, request_id: str) -> None:
    principal = scope.get(PRINCIPAL)
    user_id = getattr(principal, "user_id", None)
    key_id = getattr(principal, "key_id", None)
    method, path, duration_ms = scope["method"], _redacted(scope["path"]), round(seconds * 1000, 2)
    request_id = _redacted(request_id)
    access_logger.info(
        "%s %s %s %.2fms route=%s request_id=%s user_id=%s key_id=%s",
        *(method, path, status, duration_ms, route, request_id, user_id, key_id),
        extra={
            "fields": {
                "method": method,
                "route": route,
                "path": path,
                "status": status,
                "duration_ms": duration_ms,
                "request_id": request_id,
                "user_id": user_id,
                "key_id": key_id,
            }
        },
    )


# --- /metrics -----------------------------------------------------------------------------------------------


async def metrics_endpoint(_: Request) -> Response:
    content, media_type = metrics.exposition()
    return Response(content, media_type=media_type)


def install(app: FastAPI, settings: Settings) -> None:
    """The middleware (outermost) and, unless `SMARTER_CORE_METRICS=false`, `GET /metrics`."""
    if settings.metrics:
        # Unauthenticated, like a health probe: it names routes and counts, never a tenant, user or key.
        app.add_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
    app.add_middleware(Observe, with_metrics=settings.metrics)


# --- logging --------------------------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, and the record's `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            data.update(fields)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_format(settings: Settings) -> Literal["text", "json"]:
    if settings.log_format is not None:
        return settings.log_format
    return "text" if sys.stderr.isatty() else "json"


def logging_config(settings: Settings, *, access_log: bool) -> dict[str, Any]:
    """The `logging.config.dictConfig` of the server (given to uvicorn, which applies it in every worker):
    one stderr handler in the chosen format; uvicorn's access log off, ours on unless `--no-access-log`."""
    level = settings.log_level.upper()
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"} if log_format(settings) == "json" else {"format": TEXT_FORMAT}
    )
    # The access log follows the log level like uvicorn's did: quiet at `warning` and above.
    access_level = level if access_log else "CRITICAL"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"main": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "main", "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            ACCESS_LOGGER: {"level": access_level},
        },
    }


def prepare_serving(settings: Settings, *, workers: int, access_log: bool) -> dict[str, Any]:
    """What `serve` sets up before uvicorn starts: the logs (returned for uvicorn's `log_config`) and the
    metrics directory several workers share."""
    config = logging_config(settings, access_log=access_log)
    logging.config.dictConfig(config)
    if "SMARTER_CORE_TELEMETRY" in os.environ:
        logging.getLogger(__name__).warning(
            "SMARTER_CORE_TELEMETRY is not a setting (any more): see /metrics and the access log (README)."
        )
    if settings.metrics:
        metrics.prepare_multiprocess(workers)
    return config
