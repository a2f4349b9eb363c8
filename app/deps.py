"""Request dependencies as `Annotated` types: the runtime, the session (unit of work), the principal.

All of them are `async def`: a sync dependency would move the hot path onto the thread pool.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app import db
from app.middleware import PARSED_KEY
from app.observe import PRINCIPAL
from app.runtime import Runtime
from app.services import keys, principals
from app.services.keys import parse_authorization
from app.services.principals import Principal


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_runtime(request: Request) -> Runtime:
    return runtime_of(request)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


# Requests that only read keep SQLite's concurrent readers; every other one is a writer (`db.writer_engine`).
# The manifest API's reads are POSTs too (the SDK sends them so): of its commands, these four write.
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_MANIFEST_API = "/api/v1/cli/"
_MANIFEST_WRITES = frozenset({"apply", "delete", "deploy", "undeploy"})


def writes(request: Request) -> bool:
    if request.method in _READ_METHODS:
        return False
    path: str = request.scope["path"]
    if path.startswith(_MANIFEST_API):
        return path[len(_MANIFEST_API) :].split("/", 1)[0] in _MANIFEST_WRITES
    return True


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; commits once, before the response is sent (scope="function")."""
    runtime = runtime_of(request)  # not RuntimeDep: a sub-dependency costs FastAPI's solver more than this
    await runtime.schema.ensure(runtime.engine)
    session = runtime.writer_sessionmaker() if writes(request) else runtime.sessionmaker()
    try:
        yield session
    except BaseException:
        with contextlib.suppress(Exception):  # the original error matters more than a failed rollback
            await session.rollback()
        raise
    else:
        await db.commit(session)
    finally:
        if db.holds_anything(session):
            with contextlib.suppress(Exception):
                await session.close()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


# Shown in Swagger UI's Authorize dialog; the value is the whole header, e.g. `Token 5f2b...`.
# Declared in the OpenAPI document on every operation that depends on `get_principal` (`app.openapi`),
# not as a sub-dependency of it: FastAPI's solver would cost every authenticated request a tenth of its CPU
# to read one header.
KEY_SCHEME_NAME = "Token"
KEY_SCHEME: dict[str, str] = {
    "type": "apiKey",
    "description": "`Token <key>` (or `Bearer <key>`): a 64-character API key or login token.",
    "in": "header",
    "name": "Authorization",
}


async def get_principal(request: Request) -> Principal:
    key = request.scope.get(PARSED_KEY) or parse_authorization(request.headers.get("authorization"))
    # The runtime read directly, not through RuntimeDep: every sub-dependency costs FastAPI's solver more
    # than this whole function on a cache hit, and every authenticated request runs it.
    runtime = runtime_of(request)
    if not runtime.schema.ready:
        await runtime.schema.ensure(runtime.engine)
    principal = await principals.authenticate(runtime.reader, runtime.caches, keys.digest_of(key))
    request.scope[PRINCIPAL] = principal  # its user and key ids go in the access log
    if runtime.last_used.is_due(principal.key_id):
        await runtime.last_used.record(principal.key_id)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
