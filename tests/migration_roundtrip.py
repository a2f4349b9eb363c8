"""`make check-migrations`: upgrade head, `alembic check`, downgrade base, on SQLite and PostgreSQL.

Exits non-zero on drift or on any table left behind after the downgrade.
"""

from __future__ import annotations

import asyncio
import sys

from alembic import command
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from app import db
from tests import support


async def table_names(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    finally:
        await engine.dispose()
    return names - {"alembic_version"}


def roundtrip(label: str, url: str) -> None:
    config = db.alembic_config(url)
    config.attributes["skip_logging_config"] = True
    command.upgrade(config, "head")
    command.check(config)  # raises on drift between the models and the migrations
    command.downgrade(config, "base")
    left = asyncio.run(table_names(url))
    if left:
        raise SystemExit(f"{label}: tables left after downgrade: {sorted(left)}")
    print(f"{label}: upgrade head, check (no drift), downgrade base (empty schema): OK")  # noqa: T201


def main() -> None:
    import os
    import tempfile

    sqlite_url = f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/roundtrip.sqlite3"
    roundtrip("sqlite", sqlite_url)
    pg = os.environ.get("TEST_DATABASE_URL")
    if pg:
        url = asyncio.run(support.create_postgres_database(pg))
        try:
            roundtrip("postgresql", url)
        finally:
            asyncio.run(support.drop_postgres_database(url))
    else:
        print("postgresql: skipped (TEST_DATABASE_URL is not set)", file=sys.stderr)  # noqa: T201


if __name__ == "__main__":
    main()
