"""The race tests' app: the shared test settings, with a pool that cannot be what serialises the racers.

`tests.support.test_settings` gives `db_pool_size=10` (+ the default `db_max_overflow=8`): 18 connections,
and 20 racers were measured holding 20 at once, before anything else a racer may need (the principal
load, the `lastUsedAt` write). A racer beyond the cap would
queue in the pool, which would then be what orders the racers instead of the database.

This package overrides `live_app` (everything else, `runtime`, `client`, `world`, builds on it) with room
for every racer at once; module-scoped, so its pool is closed as soon as the module is done rather than
held open for the rest of a full run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from app.main import create_app
from tests import support

RACE_POOL_SIZE = 30


@pytest.fixture(scope="module")
async def live_app(database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(support.test_settings(database_url, db_pool_size=RACE_POOL_SIZE))
    async with application.router.lifespan_context(application):
        yield application
