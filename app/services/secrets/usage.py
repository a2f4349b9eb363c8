"""Which connections use a secret: what blocks its deletion, and its manifest's `dependencies`.

A connection refers to secrets of its own account only (composite foreign keys), so every user of a
secret is in the secret's account.
"""

from __future__ import annotations

from sqlalchemy import literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import ApiConnection, SqlConnection

SQL_CONNECTION = "SqlConnection"
API_CONNECTION = "ApiConnection"


async def connections_using(session: AsyncSession, secret_id: int) -> list[tuple[str, str]]:
    """(kind, name) of every connection that uses the secret, by kind then name; one query."""
    sql = select(literal(SQL_CONNECTION).label("kind"), SqlConnection.name).where(
        or_(SqlConnection.password_secret_id == secret_id, SqlConnection.proxy_password_secret_id == secret_id)
    )
    api = select(literal(API_CONNECTION).label("kind"), ApiConnection.name).where(
        or_(ApiConnection.api_key_secret_id == secret_id, ApiConnection.proxy_password_secret_id == secret_id)
    )
    both = union_all(sql, api).subquery()
    rows = await session.execute(select(both.c.kind, both.c.name).order_by(both.c.kind, both.c.name))
    return [(str(kind), str(name)) for kind, name in rows.all()]
