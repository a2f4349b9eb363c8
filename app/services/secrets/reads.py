"""Secret rows as the API shows them (never the value): pages, one by id, one by name.

Rows are read as columns with their owner joined in, and their tags in one more query, for a page and a
single secret alike (one shape, one code path).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.identifiers import hashed_id
from app.models import Account, Secret, User, UserProfile
from app.schemas.secrets import SecretRead
from app.services.base import Page, page_of, page_statement, path_id, query_name
from app.services.principals import Principal
from app.services.secrets import rules
from app.services.tags import names_of as tag_names


def with_owner(*columns: Any) -> Select[Any]:
    """SELECT `columns` of secrets joined to their owner profile's user and account (which `columns` may name)."""
    return (
        select(*columns)
        .select_from(Secret)
        .join(UserProfile, UserProfile.id == Secret.user_profile_id)
        .join(User, User.id == UserProfile.user_id)
        .join(Account, Account.id == Secret.account_id)
    )


_ROWS = with_owner(
    Secret.id,
    Secret.name,
    Secret.description,
    Secret.version,
    Secret.annotations,
    Secret.created_at,
    Secret.updated_at,
    Secret.expires_at,
    Secret.last_accessed,
    User.username,
    User.email,
    Account.account_number,
)
_ADAPTER: TypeAdapter[list[SecretRead]] = TypeAdapter(list[SecretRead])


async def read_rows(session: AsyncSession, statement: Select[Any]) -> list[SecretRead]:
    rows = (await session.execute(statement)).all()
    tags = await tag_names(session, Secret, [row.id for row in rows])
    items = [
        {
            "id": row.id,
            "hashed_id": hashed_id(row.id),
            "record_locator": Secret.locator_of(row.id),
            "name": row.name,
            "description": row.description,
            "version": row.version,
            "tags": tags[row.id],
            "annotations": row.annotations,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
            "expires_at": row.expires_at,
            "last_accessed": row.last_accessed,
            "user_profile": {
                "user": {"username": row.username, "email": row.email},
                "account": {"account_number": row.account_number},
            },
        }
        for row in rows
    ]
    return _ADAPTER.validate_python(items)


def by_ref(ref: str) -> ColumnElement[bool]:
    """A path `{id}`: the integer id or the hashedId."""
    return Secret.id == path_id(ref, not_found=rules.NOT_FOUND)


async def list_secrets(
    session: AsyncSession, principal: Principal, page: Page, *, name: str | None = None, tag: str | None = None
) -> tuple[list[SecretRead], bool]:
    """A page of the secrets in the caller's ownership scope, newest first (and whether more exist)."""
    statement = _ROWS.where(rules.visible(principal))
    if name is not None:
        statement = statement.where(Secret.name == query_name(name))
    if tag is not None:
        statement = statement.where(Secret.has_tag(tag.strip()))
    return page_of(await read_rows(session, page_statement(statement, page, key=Secret.id)), page)


async def read_one(session: AsyncSession, secret_id: int) -> SecretRead:
    """A secret already known to be in scope (just found or written)."""
    return (await read_rows(session, _ROWS.where(Secret.id == secret_id)))[0]


async def get_secret(session: AsyncSession, principal: Principal, ref: str) -> SecretRead:
    found = await read_rows(session, _ROWS.where(by_ref(ref), rules.visible(principal)))
    if not found:
        raise NotFound(rules.NOT_FOUND)
    return found[0]


# --- for the domains that refer to secrets by name (connections) ----------------------------------------------


async def ids_by_name(session: AsyncSession, account_id: int, names: Iterable[str]) -> dict[str, int]:
    """The ids of the account's secrets called `names` (already normalised); absent names are left out."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    statement = select(Secret.name, Secret.id).where(Secret.account_id == account_id, Secret.name.in_(wanted))
    return {str(name): int(secret_id) for name, secret_id in (await session.execute(statement)).all()}


async def names_by_id(session: AsyncSession, ids: Iterable[int | None]) -> dict[int, str]:
    """The names of the secrets `ids` (None entries ignored), for showing a reference by name."""
    wanted = sorted({secret_id for secret_id in ids if secret_id is not None})
    if not wanted:
        return {}
    statement = select(Secret.id, Secret.name).where(Secret.id.in_(wanted))
    return {int(secret_id): str(name) for secret_id, name in (await session.execute(statement)).all()}
