"""The REST rules of `/api/v1/api-keys/`: list, read, create, change, (de)activate, delete."""

from __future__ import annotations

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app import text
from app.identifiers import hashed_id, record_locator
from app.models import Account, ApiKey, User
from app.schemas.api_keys import ApiKeyCreate, ApiKeyRead, ApiKeyUpdate
from app.services import tags as tag_service
from app.services.api_keys.issuing import check_expiry, issue_key
from app.services.api_keys.rules import CALLER_NOT_STAFF, NOT_FOUND, READ_OPTIONS
from app.services.api_keys.scopes import (
    key_owner,
    ref_statement,
    reload_key,
    remove_key,
    set_key_active,
    visible,
    writable_key,
    write_key,
)
from app.services.base import Page, page_of, page_statement, query_name
from app.services.permissions import (
    acting_account,
    get_scoped,
    require,
)
from app.services.principals import Principal

# The page query selects only what a row shows, the owner joined in; tags come in one more query.
_PAGE = (
    select(
        ApiKey.id,
        ApiKey.key_id,
        ApiKey.name,
        ApiKey.description,
        ApiKey.version,
        ApiKey.annotations,
        ApiKey.created_at,
        ApiKey.updated_at,
        ApiKey.is_active,
        ApiKey.last_used_at,
        ApiKey.expires_at,
        ApiKey.digest,
        ApiKey.user_id,
        ApiKey.user_profile_id,
        User.username,
        User.email,
        Account.account_number,
    )
    .join(User, User.id == ApiKey.user_id)
    .join(Account, Account.id == ApiKey.account_id)
)
_PAGE_ADAPTER: TypeAdapter[list[ApiKeyRead]] = TypeAdapter(list[ApiKeyRead])


async def list_keys(
    session: AsyncSession,
    principal: Principal,
    page: Page,
    *,
    name: str | None = None,
    is_active: bool | None = None,
    tag: str | None = None,
) -> tuple[list[ApiKeyRead], bool]:
    """A page of named keys in the ownership scope, newest first (and whether more exist).

    One query for the page and one for its tags. Rows are column tuples, not ORM objects: loading a key,
    its user, profile and account as objects cost several times more than both queries.
    """
    statement = _PAGE.where(visible(principal))
    if name is not None:
        statement = statement.where(ApiKey.name == query_name(name))
    if is_active is not None:
        statement = statement.where(ApiKey.is_active == is_active)
    if tag is not None:
        statement = statement.where(ApiKey.has_tag(tag.strip()))
    statement = page_statement(statement, page, key=ApiKey.id)
    rows, has_more = page_of((await session.execute(statement)).all(), page)

    tags = await tag_service.names_of(session, ApiKey, [row.id for row in rows])
    items = [
        {
            "id": row.id,
            "hashed_id": hashed_id(row.id),
            "record_locator": record_locator(ApiKey.locator_name, row.id),
            "key_id": row.key_id,
            "name": row.name,
            "description": row.description,
            "version": row.version,
            "tags": tags[row.id],
            "annotations": row.annotations,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
            "is_active": row.is_active,
            "last_used_at": row.last_used_at,
            "expires_at": row.expires_at,
            # The original's identifier: mask_string(digest) with its 8-character default.
            "identifier": text.mask_string(row.digest, string_length=8),
            "user": {"id": row.user_id, "username": row.username},
            "user_profile": {
                "id": row.user_profile_id,
                "user": {"username": row.username, "email": row.email},
                "account": {"account_number": row.account_number},
            },
        }
        for row in rows
    ]
    return _PAGE_ADAPTER.validate_python(items), has_more


async def get_key(session: AsyncSession, principal: Principal, ref: str) -> ApiKey:
    return await get_scoped(session, ref_statement(principal, ref).options(*READ_OPTIONS), not_found=NOT_FOUND)


async def create_key(session: AsyncSession, principal: Principal, data: ApiKeyCreate) -> tuple[ApiKey, str]:
    """A key for `data.username` (default: the caller), owned by their profile in the owner account."""
    require(principal.is_staff or principal.is_superuser, CALLER_NOT_STAFF)
    acting = await acting_account(session, principal, data.account_number, where="body")
    user, profile = await key_owner(
        session, principal, data.username or principal.username, acting, named=data.account_number is not None
    )
    row, plaintext = await issue_key(
        session,
        user=user,
        profile=profile,
        name=data.name,
        description=data.description,
        version=data.version,
        tags=data.tags,
        annotations=data.annotations,
        expires_at=data.expires_at,
        is_active=data.is_active,
    )
    return await reload_key(session, row.id), plaintext


async def update_key(session: AsyncSession, principal: Principal, ref: str, data: ApiKeyUpdate) -> ApiKey:
    statement = ref_statement(principal, ref).options(selectinload(ApiKey.tag_links))
    key = await writable_key(session, principal, statement, NOT_FOUND)
    changes = data.model_dump(exclude_unset=True, by_alias=False)
    check_expiry(changes.get("expires_at"))
    await write_key(session, key, changes)
    return await reload_key(session, key.id)


async def set_active(session: AsyncSession, principal: Principal, ref: str, active: bool | None) -> ApiKey:
    """Activate (True), deactivate (False) or toggle (None) a key."""
    key = await writable_key(session, principal, ref_statement(principal, ref), NOT_FOUND)
    await set_key_active(session, key, active)
    return await reload_key(session, key.id)


async def delete_key(session: AsyncSession, principal: Principal, ref: str) -> None:
    await remove_key(session, await writable_key(session, principal, ref_statement(principal, ref), NOT_FOUND))
