"""Test support for SQL and API plugins: connection rows (written with the ORM, as a connections service would)
and the bodies of SQL and API plugins."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import ApiConnection, SqlConnection, UserProfile
from app.runtime import Runtime
from tests.support import unit_of_work


async def add_connection(session: AsyncSession, kind: str, owner: UserProfile, name: str, **fields: Any) -> int:
    """A SqlConnection (`kind` "sql") or ApiConnection ("api") owned by `owner` in its account; its id."""
    if kind == "sql":
        values: dict[str, Any] = {"db_engine": "django.db.backends.sqlite3", "database": ":memory:", **fields}
        row: SqlConnection | ApiConnection = SqlConnection(
            name=name, user_profile_id=owner.id, account_id=owner.account_id, **values
        )
    else:
        values = {"base_url": "http://127.0.0.1:9", **fields}
        row = ApiConnection(name=name, user_profile_id=owner.id, account_id=owner.account_id, **values)
    session.add(row)
    await session.flush()
    return row.id


async def connection(runtime: Runtime, kind: str, owner: UserProfile, name: str, **fields: Any) -> int:
    async with unit_of_work(runtime) as session:
        return await add_connection(session, kind, owner, name, **fields)


def sql_data(**changes: Any) -> dict[str, Any]:
    return {
        "description": "Customers of a country.",
        "sqlQuery": "SELECT id, name FROM customers WHERE country = {country} AND name <> '{}'",
        "parameters": [{"name": "country", "type": "string", "description": "ISO code.", "required": True}],
        "testValues": [{"name": "country", "value": "PT"}],
        "limit": 10,
        **changes,
    }


def api_data(**changes: Any) -> dict[str, Any]:
    return {
        "description": "Weather of a city.",
        "endpoint": "/v1/weather/{city}",
        "method": "GET",
        "urlParams": [{"key": "units", "value": "{unit}"}],
        "headers": [{"name": "X-Trace", "value": "plugin-{city}"}],
        "body": None,
        "parameters": [
            {"name": "city", "type": "string", "required": True},
            {"name": "unit", "type": "string", "enum": ["metric", "imperial"], "default": "metric", "required": False},
        ],
        "testValues": [{"name": "city", "value": "Lisbon"}],
        "limit": 5,
        **changes,
    }
