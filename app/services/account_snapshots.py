"""The `account` cache: an immutable snapshot per account, keyed by `("id", id)` and `("number", number)`,
tagged `("account", id)`; loaded on a session of its own, invalidated by `cache_rules` from the rows written.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import selectinload

from app import identifiers
from app.caching.registry import CacheRegistry, SingleFlightCache, Tag
from app.caching.rules import ACCOUNT_CACHE as ACCOUNT_CACHE
from app.errors import NotFound
from app.models import Account
from app.schemas.accounts import AccountRead
from app.services.base import path_id
from app.services.permissions import (
    can_read_account,
)
from app.services.principals import Principal

NOT_FOUND = "No account with this id is visible to you."


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """What a lookup of one account needs: its identity, its flags, and its REST row already serialised."""

    id: int
    account_number: str
    name: str
    is_active: bool
    is_default_account: bool
    detail: bytes


def _snapshot_tags(snapshot: AccountSnapshot) -> Iterable[Tag]:
    yield ("account", snapshot.id)


def account_cache(caches: CacheRegistry) -> SingleFlightCache[Hashable, AccountSnapshot]:
    return caches.register(ACCOUNT_CACHE, tags_of=_snapshot_tags)


def snapshot_of(account: Account) -> AccountSnapshot:
    """`account` must have its tags loaded."""
    return AccountSnapshot(
        id=account.id,
        account_number=account.account_number,
        name=account.name,
        is_active=account.is_active,
        is_default_account=account.is_default_account,
        detail=AccountRead.model_validate(account).model_dump_json().encode(),
    )


async def _load_snapshot(engine: AsyncEngine, condition: ColumnElement[bool]) -> AccountSnapshot | None:
    # A session of its own: the load is shared by concurrent requests and must outlive any one of them.
    async with AsyncSession(engine, expire_on_commit=False) as session:
        statement = select(Account).where(condition).options(selectinload(Account.tag_links))
        account = (await session.execute(statement)).scalar_one_or_none()
        return None if account is None else snapshot_of(account)


async def cached_by_id(engine: AsyncEngine, caches: CacheRegistry, account_id: int) -> AccountSnapshot | None:
    return await account_cache(caches).get(("id", account_id), lambda: _load_snapshot(engine, Account.id == account_id))


async def cached_by_number(engine: AsyncEngine, caches: CacheRegistry, account_number: str) -> AccountSnapshot | None:
    """The committed account with this number (None for none, or for a malformed number: no query)."""
    if not identifiers.is_account_number(account_number):
        return None
    return await account_cache(caches).get(
        ("number", account_number), lambda: _load_snapshot(engine, Account.account_number == account_number)
    )


async def readable_snapshot(
    engine: AsyncEngine, caches: CacheRegistry, principal: Principal, account_id: int
) -> AccountSnapshot:
    """The account's snapshot when `principal` may read it; 404 otherwise (existence not revealed).

    A hit does no database I/O; a miss loads on a session of its own, shared by concurrent requests.
    """
    snapshot = await cached_by_id(engine, caches, account_id)
    if snapshot is None or not can_read_account(principal, snapshot.id):
        raise NotFound(NOT_FOUND)
    return snapshot


async def resolve_path_id(engine: AsyncEngine, caches: CacheRegistry, value: str) -> int:
    """A path `{id}`: the integer id, the hashedId, or the account number (resolved through the cache).

    An unknown number is a 404 like an unknown id; scope is checked afterwards, by whoever reads the row.
    """
    if identifiers.is_account_number(value):
        snapshot = await cached_by_number(engine, caches, value)
        if snapshot is None:
            raise NotFound(NOT_FOUND)
        return snapshot.id
    return path_id(value, not_found=NOT_FOUND)
