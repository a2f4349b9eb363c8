"""The platform commands of the manifest API: `version` and `status` (what runs, whether the database answers)."""

from __future__ import annotations

import platform
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata as package_metadata
from typing import Any

from app import __version__
from app.config import Settings
from app.db_errors import is_database_unavailable
from app.schemas.journal import (
    ApiVersionInfo,
    CliVersionInfo,
    Journaled,
    JournalMetadata,
    PlatformStatus,
    PlatformVersion,
)
from app.services.manifests.protocol import NO_THING
from app.services.principals import Principal

_PACKAGES = ("fastapi", "starlette", "pydantic", "sqlalchemy", "alembic", "asyncpg", "aiosqlite", "uvicorn", "pyyaml")


def _meta(command: str) -> JournalMetadata:
    return JournalMetadata(command=command, thing=NO_THING)


@lru_cache(maxsize=1)
def _package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in _PACKAGES:
        try:
            versions[package] = package_metadata.version(package)
        except package_metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def sees_platform_details(principal: Principal) -> bool:
    """Only staff and superusers see the database backend, Python and package versions (they help attackers)."""
    return principal.is_staff or principal.is_superuser


def version(principal: Principal) -> Journaled[PlatformVersion]:
    packages = _package_versions() if sees_platform_details(principal) else {}
    data = PlatformVersion(api=ApiVersionInfo(version=__version__, python=packages), cli=CliVersionInfo(version=None))
    return Journaled(metadata=_meta("version"), data=data, message=f"smarter-core {__version__}")


@dataclass(frozen=True, slots=True)
class Platform:
    """What `status` reports on, given by the caller (from the app's settings, schema gate and listener)."""

    settings: Settings
    head: str  # the migration head this code expects
    read_revision: Callable[[], Awaitable[str | None]]  # the database's revision (raises when unavailable)
    listening: bool  # whether invalidations arrive from other processes (LISTEN/NOTIFY)


async def status(facts: Platform, principal: Principal) -> Journaled[PlatformStatus]:
    """The database (reachable, schema revision) and the caches; 200 even when the database is down.

    Regular users see whether the database answers, nothing of what it or the process is.
    """
    settings = facts.settings
    backend = "sqlite" if settings.is_sqlite else "postgresql"
    database: dict[str, Any] = {"backend": backend, "head": facts.head}
    try:
        revision = await facts.read_revision()
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        database.update(status="unavailable", revision=None)
    else:
        database.update(status="ok" if revision == facts.head else "migration-pending", revision=revision)
    caches = {
        "backend": "in-process",
        "ttlSeconds": settings.cache_ttl,
        "invalidation": "postgresql-listen-notify" if facts.listening else "process-local",
    }
    compute = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "system": platform.system(),
        "machine": platform.machine(),
        "workers": settings.workers,
    }
    if not sees_platform_details(principal):
        data = PlatformStatus(infrastructures={"database": {"status": database["status"]}}, compute={})
    else:
        data = PlatformStatus(infrastructures={"database": database, "caches": caches}, compute=compute)
    return Journaled(metadata=_meta("status"), data=data, message=f"Database {database['status']}")
