"""Row builders for the model tests: plain ORM objects, no services, so the database's rules are what is tested."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from app.models import KIND_API_KEY, Account, AccountContact, ApiKey, PluginMeta, User, UserProfile
from app.runtime import Runtime
from app.services import keys
from tests.support import unit_of_work


@dataclass(frozen=True)
class Seed:
    """Two accounts; `staff` is a member of both, `regular` of A only (ids only: no session ties)."""

    account_a: int
    account_b: int
    staff: int
    regular: int
    staff_a: int  # profile ids
    staff_b: int
    regular_a: int


def account(name: str, number: str, **fields: Any) -> Account:
    return Account(name=name, company_name=f"{name} Inc.", account_number=number, **fields)


def user(username: str, **fields: Any) -> User:
    return User(username=username, email=f"{username}@example.com", **fields)


def profile(user_id: int, account_id: int, name: str = "member") -> UserProfile:
    return UserProfile(user_id=user_id, account_id=account_id, name=name)


def plugin(profile_id: int, account_id: int, name: str = "plugin", plugin_class: str = "static") -> PluginMeta:
    return PluginMeta(user_profile_id=profile_id, account_id=account_id, name=name, plugin_class=plugin_class)


def contact(account_id: int, email: str, *, is_primary: bool = False) -> AccountContact:
    return AccountContact(
        account_id=account_id, email=email, first_name="A", last_name="Contact", is_primary=is_primary
    )


def api_key(
    user_id: int,
    profile_id: int | None,
    account_id: int | None,
    name: str = "key",
    *,
    kind: str = KIND_API_KEY,
    plaintext: str | None = None,
    **fields: Any,
) -> ApiKey:
    plaintext = plaintext or keys.generate_key()
    return ApiKey(
        user_id=user_id,
        user_profile_id=profile_id,
        account_id=account_id,
        name=name,
        kind=kind,
        token_key=keys.token_key_of(plaintext),
        digest=keys.digest_of(plaintext),
        **fields,
    )


def random_number() -> str:
    return "-".join(f"{secrets.randbelow(10_000):04d}" for _ in range(3))


async def seed(runtime: Runtime) -> Seed:
    async with unit_of_work(runtime) as session:
        a, b = account("acct_a", "1111-1111-1111"), account("acct_b", "2222-2222-2222")
        staff, regular = user("staff", is_staff=True), user("regular")
        session.add_all([a, b, staff, regular])
        await session.flush()
        staff_a, staff_b = profile(staff.id, a.id, "staff"), profile(staff.id, b.id, "staff")
        regular_a = profile(regular.id, a.id, "regular")
        session.add_all([staff_a, staff_b, regular_a])
        await session.flush()
        return Seed(a.id, b.id, staff.id, regular.id, staff_a.id, staff_b.id, regular_a.id)


async def insert(runtime: Runtime, *rows: Any) -> None:
    """Insert and commit, one flush per row (so each row's foreign keys already exist)."""
    async with unit_of_work(runtime) as session:
        for row in rows:
            session.add(row)
            await session.flush()


async def rejected(runtime: Runtime, *rows: Any) -> IntegrityError:
    """Insert `rows` in a fresh session and return the IntegrityError the database raises (rolled back)."""
    async with runtime.sessionmaker() as session:
        *before, last = rows
        for row in before:
            session.add(row)
            await session.flush()
        session.add(last)
        with pytest.raises(IntegrityError) as info:
            await session.flush()
        await session.rollback()
    return info.value
