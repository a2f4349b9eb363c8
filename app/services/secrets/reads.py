"""Secret rows as the API shows them (never the value): pages, one by id, one by name.

Rows are read as columns with their owner joined in, and their tags in one more query, for a page and a
single secret alike (one shape, one code path).
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.identifiers import hashed_id
from app.models import Account, Base, Secret, Tag, User, UserProfile
from app.schemas.secrets import SecretRead
from app.services import profiles
from app.services.base import Page, path_id
from app.services.principals import Principal
from app.services.secrets import rules

_ROWS = (
    select(
        Secret.id,
        Secret.name,
        Secret.description,
        Secret.version,
        Secret.annotations,
        Secret.created_at,
        Secret.updated_at,
        Secret.expires_at,
        Secret.last_accessed,
        Secret.account_id,
        User.username,
        User.email,
        Account.account_number,
    )
    .join(UserProfile, UserProfile.id == Secret.user_profile_id)
    .join(User, User.id == UserProfile.user_id)
    .join(Account, Account.id == Secret.account_id)
)
_TAG_LINKS = Base.metadata.tables["secret_tag"]
_ADAPTER: TypeAdapter[list[SecretRead]] = TypeAdapter(list[SecretRead])


async def _tags_of(session: AsyncSession, ids: list[int]) -> dict[int, list[str]]:
    tags: dict[int, list[str]] = {id_: [] for id_ in ids}
    if ids:
        links = (
            select(_TAG_LINKS.c.object_id, Tag.name)
            .join(Tag, Tag.id == _TAG_LINKS.c.tag_id)
            .where(_TAG_LINKS.c.object_id.in_(ids))
            .order_by(Tag.name)
        )
        for object_id, name in (await session.execute(links)).all():
            tags[object_id].append(name)
    return tags


async def read_rows(session: AsyncSession, statement: Select[Any]) -> list[SecretRead]:
    rows = (await session.execute(statement)).all()
    tags = await _tags_of(session, [row.id for row in rows])
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
        statement = statement.where(Secret.name == profiles.normalised_query_name(name))
    if tag is not None:
        statement = statement.where(Secret.has_tag(tag.strip()))
    if page.before is not None:
        statement = statement.where(Secret.id < page.before)
    statement = statement.order_by(Secret.id.desc()).limit(page.limit + 1).offset(page.offset)
    rows = await read_rows(session, statement)
    return rows[: page.limit], len(rows) > page.limit


async def read_one(session: AsyncSession, secret_id: int) -> SecretRead:
    """A secret already known to be in scope (just found or written)."""
    return (await read_rows(session, _ROWS.where(Secret.id == secret_id)))[0]


async def get_secret(session: AsyncSession, principal: Principal, ref: str) -> SecretRead:
    found = await read_rows(session, _ROWS.where(by_ref(ref), rules.visible(principal)))
    if not found:
        raise NotFound(rules.NOT_FOUND)
    return found[0]
