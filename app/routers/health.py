"""Liveness and readiness."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from app.db_errors import is_database_unavailable
from app.deps import RuntimeDep
from app.errors import ServiceUnavailable
from app.openapi import problems
from app.routers.base import resource_router

router = resource_router(tag="health")


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    revision: str


@router.get("/healthz", summary="Liveness", description="200 while the process serves; never touches the database.")
async def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    summary="Readiness",
    description="200 when the database answers and its schema is at the newest migration, else 503.",
    responses=problems(503),
)
async def readyz(runtime: RuntimeDep) -> Readiness:
    try:
        revision = await runtime.schema.check(runtime.engine)
    except Exception as exc:
        if is_database_unavailable(exc):
            raise ServiceUnavailable("The database is unavailable.") from exc
        raise
    if revision != runtime.schema.head:
        raise ServiceUnavailable(f"The schema is at {revision or 'no revision'}, not {runtime.schema.head}.")
    return Readiness(revision=revision)
