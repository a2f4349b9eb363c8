"""The app factory and its lifespan."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.routing import Route

from app import __version__, metrics, observe, openapi
from app.config import Settings, get_settings
from app.deps import KEY_SCHEME, KEY_SCHEME_NAME, get_principal
from app.http_errors import install_handlers
from app.mcp_server import PATH as MCP_PATH
from app.mcp_server import McpEndpoint
from app.middleware import BODY_METHODS, RequestGuard
from app.routers import routes
from app.routers.base import operation_id
from app.runtime import Runtime

logger = logging.getLogger(__name__)

YOUNG_COLLECTION_THRESHOLD = 10_000

TAGS = [
    {"name": "health", "description": "Liveness and readiness probes (no authentication)."},
    {"name": "auth", "description": "Login tokens from a username and password; logout."},
    {"name": "accounts", "description": "Accounts (tenants). The platform account is `3141-5926-5359`."},
    {"name": "users", "description": "Users of the accounts you can see."},
    {"name": "user-profiles", "description": "A user's membership of an account."},
    {"name": "contacts", "description": "Account contacts; one primary per account."},
    {"name": "plugins", "description": "Plugins with their selector, LLM prompt settings and static data."},
    {"name": "api-keys", "description": "API keys (SAM kind `SmarterAuthToken`). The key is shown once."},
    {"name": "secrets", "description": "Secrets connections use (SAM kind `Secret`); values are never returned."},
    {"name": "connections", "description": "SQL and API connections plugins call; credentials are secret names."},
    {"name": "manifests", "description": "The Smarter CLI/SDK manifest protocol (journal envelopes)."},
]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    runtime = Runtime.build(app.state.settings)
    app.state.runtime = runtime
    await runtime.start()
    metrics.watch_pool(runtime.engine)
    mcp: McpEndpoint = app.state.mcp
    threshold = gc.get_threshold()
    try:
        try:
            revision = await runtime.schema.check(runtime.engine)
        except Exception as exc:  # the service still starts; /readyz reports the database
            logger.warning("Database not reachable at startup: %s", type(exc).__name__)
        else:
            if revision != runtime.schema.head:
                logger.warning("Schema at %s, expected %s: serving 503 until migrated.", revision, runtime.schema.head)
        # What start-up built (modules, models, statements, routes) lives as long as the app: out of the
        # collector's reach, the full collections that walk it (~70 ms each, a p99 spike) no longer happen.
        gc.freeze()
        # CPython collects its youngest objects once 700 more have been allocated than freed. With thirty-odd
        # list or manifest requests in flight that is every few requests, each collection walking (and promoting
        # to the middle generation, whose own passes took up to 13 ms) the objects of every request in flight.
        # At 10,000, most of them are freed before a collection comes: the collector's share of a manifest table
        # request fell from ~7 µs to ~1 (in-process, 32 concurrent requests), its longest pause from 13 ms to ~2.
        gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *threshold[1:])
        await mcp.start()  # the MCP session manager (`app.mcp_server`) runs as long as the app
        try:
            yield
        finally:
            await mcp.stop()
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()  # back to the oldest generation: a process that builds apps again (tests) frees them
        await runtime.stop()
        metrics.worker_stopped()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # Swagger UI and ReDoc from the assets fastapi-offline ships, served here: no CDN, docs work offline.
    app = FastAPIOffline(
        title="smarter-core",
        version=__version__,
        summary="Accounts, users, plugins and API keys of the Smarter LLM platform.",
        description=(
            "Authenticate with **Authorize**: enter `Token <your 64-character key>`. "
            "`smarter-core serve` prints the admin key on first start."
        ),
        lifespan=lifespan,
        redirect_slashes=False,
        openapi_tags=TAGS,
        generate_unique_id_function=operation_id,
        # FastAPI's OpenTelemetry hooks off: no per-request look for providers (metrics: /metrics, `app.observe`).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    install_handlers(app)
    # Each router's routes go on the app's own router, in `routes()` order and ahead of the documentation
    # routes FastAPI adds at construction, rather than through `include_router`: FastAPI (0.16x) keeps an
    # included router as a nested matcher whose bookkeeping cost every request about a hundred Python calls
    # (a sixth of a cached plugin read), where a route that does not match costs six. Every route is
    # already complete on its router (full path, tags, responses, operation id).
    app.router.routes[:0] = routes()
    # The Model Context Protocol endpoint (`app.mcp_server`): an ASGI app, outside the OpenAPI document. First:
    # its one-regex match costs the other routes less than the sixty FastAPI matches ahead of it would cost it.
    app.state.mcp = McpEndpoint()
    app.router.routes.insert(0, Route(MCP_PATH, endpoint=app.state.mcp))
    app.add_middleware(RequestGuard, max_body_bytes=settings.max_body_bytes)
    observe.install(app, settings)  # added last: the outermost middleware
    # Error responses as the handlers send them (problem+json or journal, 422 included), on every operation;
    # 413 on the methods whose bodies the guard limits (its own list, so the two cannot drift apart).
    openapi.install(
        app,
        guarded_methods=BODY_METHODS,
        authenticates=get_principal,
        security_scheme=(KEY_SCHEME_NAME, KEY_SCHEME),
    )
    return app
