"""Fixtures: one fresh database per run (SQLite, or PostgreSQL with TEST_DATABASE_URL), built by the
migrations; the real app with its lifespan; clean tables and caches before every test.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from app.main import create_app
from app.runtime import Runtime
from tests import support
from tests.secrets_scan import SCANNER

# The root logger's level as the run found it: a test that runs `serve` in process applies the server's
# logging configuration (root at INFO), which would leave every library's INFO records (httpx's request lines)
# on for the rest of the run.
_ROOT_LEVEL = logging.getLogger().level


def _attach_scanner() -> None:
    # Every record of the run passes the secrets scanner; the service's own loggers at every level.
    root = logging.getLogger()
    root.setLevel(_ROOT_LEVEL)
    if SCANNER not in root.handlers:
        root.addHandler(SCANNER)
    logging.getLogger("app").setLevel(logging.DEBUG)


def pytest_sessionstart(session: pytest.Session) -> None:
    _attach_scanner()


def pytest_runtest_setup(item: pytest.Item) -> None:
    # A test that runs `serve` in process applies the server's logging configuration, which replaces the
    # root logger's handlers: the scanner goes back on before the next test.
    _attach_scanner()


def pytest_runtest_teardown(item: pytest.Item) -> None:
    _attach_scanner()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    logging.getLogger().removeHandler(SCANNER)
    if SCANNER.leaks:
        sources = sorted(set(SCANNER.leaks))
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"SECRETS IN LOGS: {len(SCANNER.leaks)} record(s) from: {', '.join(sources)}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if support.backend() == "postgresql":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (run `make test-postgres`)")
    for item in items:
        if "postgres_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def database_url() -> str:
    url = asyncio.run(support.fresh_database_url())
    support.migrate(url)
    yield url  # type: ignore[misc]
    if url.startswith("postgresql"):
        asyncio.run(support.drop_postgres_database(url))


@pytest.fixture(scope="session")
async def live_app(database_url: str) -> AsyncIterator[FastAPI]:
    """The app, with its lifespan running for the whole session."""
    application = create_app(support.test_settings(database_url))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def runtime(live_app: FastAPI) -> Runtime:
    """The app's runtime, with empty tables and caches (every database test starts clean)."""
    value: Runtime = live_app.state.runtime
    await support.truncate_all(value)
    return value


@pytest.fixture
def app(live_app: FastAPI, runtime: Runtime) -> FastAPI:
    return live_app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with support.client_for(app) as http:
        yield http


@pytest.fixture
async def world(runtime: Runtime) -> support.World:
    return await support.seed_world(runtime)
