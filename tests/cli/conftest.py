"""A fresh, empty database per test that asks for one (SQLite, or PostgreSQL with TEST_DATABASE_URL)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests import support


@pytest.fixture
async def empty_url() -> AsyncIterator[str]:
    url = await support.fresh_database_url()
    yield url
    if url.startswith("postgresql"):
        await support.drop_postgres_database(url)
