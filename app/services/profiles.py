"""User profiles: a user's membership of an account (and the account contact that comes with it).

A profile's user and account never change. Adding or removing a profile changes the user's
memberships, so it invalidates the user's principals (`("user", id)`, derived by `cache_rules`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload
from sqlalchemy.orm.interfaces import ORMOption

from app import text
from app.errors import Conflict, Unprocessable
from app.models import KIND_LOGIN, Account, AccountContact, ApiKey, User, UserProfile
from app.schemas.profiles import ProfileCreate, ProfileUpdate
from app.services import accounts
from app.services import tags as tag_service
from app.services.base import Page, fetch_page, flush, insert_ignore, query_name
from app.services.permissions import (
    account_admin_scope,
    acting_account,
    get_scoped,
    profile_scope,
    require,
)
from app.services.principals import Principal

NOT_FOUND = "No user profile with this id is visible to you."
ADMIN_ONLY = "Only staff of this profile's account (or a superuser) can remove it."
LAST_PROFILE = "This is the user's only profile; delete the user instead."

# What a profile response shows: its user, its account's number and its tags.
READ_OPTIONS: tuple[ORMOption, ...] = (
    joinedload(UserProfile.user),
    joinedload(UserProfile.account).load_only(Account.account_number),
    selectinload(UserProfile.tag_links),
)


def profile_name(username: str) -> str:
    """Profiles are named after their user, normalised like every other name."""
    try:
        return text.normalise_name(username)
    except ValueError:
        return "user"


async def add_profile(
    session: AsyncSession,
    user: User,
    account: Account,
    *,
    name: str | None = None,
    description: str = "",
    version: str = "1.0.0",
    tags: list[str] | None = None,
    annotations: list[dict[str, Any]] | None = None,
    profile_image_url: str | None = None,
    is_test: bool = False,
) -> UserProfile:
    """Add `user` to `account` (409 if already a member) and to the account's contacts."""
    profile = UserProfile(
        user_id=user.id,
        account_id=account.id,
        name=name or profile_name(user.username),
        description=description,
        version=version,
        annotations=annotations or [],
        profile_image_url=profile_image_url,
        is_test=is_test,
    )
    await tag_service.add_tagged(session, profile, tags)
    await add_contact_for(session, user, account.id)
    return profile


async def add_contact_for(session: AsyncSession, user: User, account_id: int) -> None:
    """The original's add_to_account_contacts, without its bugs: an existing contact (same email) is kept,
    the first contact of an account becomes its primary, and concurrent first contacts cannot both be primary.
    """
    if not user.email:
        return  # contacts are keyed by email; a user without one has nothing to add
    values = {
        "account_id": account_id,
        "email": user.email,
        "first_name": user.first_name or "account",
        "last_name": user.last_name or "contact",
    }
    # ON CONFLICT DO NOTHING covers both the (account, email) key and the one-primary index.
    if not await insert_ignore(session, AccountContact, [{**values, "is_primary": True}]):
        await insert_ignore(session, AccountContact, [{**values, "is_primary": False}])


async def profiles_of(session: AsyncSession, user_id: int) -> list[UserProfile]:
    statement = select(UserProfile).where(UserProfile.user_id == user_id).order_by(UserProfile.id)
    return list((await session.execute(statement)).scalars())


# --- which account ----------------------------------------------------------------------------------------


async def account_for(
    session: AsyncSession, principal: Principal, account_number: str | None, *, where: str = "body"
) -> Account:
    """The account a write targets (`permissions.acting_account`), as a row."""
    acting = await acting_account(session, principal, account_number, where=where)
    account = await session.get(Account, acting.account_id)
    if account is None:  # deleted since the credential was checked
        raise Conflict("Your account no longer exists.")
    return account


# --- REST -------------------------------------------------------------------------------------------------


def _readable(principal: Principal, profile_id: int) -> Select[UserProfile]:
    return select(UserProfile).where(UserProfile.id == profile_id, profile_scope(principal))


async def _reload(session: AsyncSession, profile_id: int) -> UserProfile:
    statement = (
        select(UserProfile)
        .where(UserProfile.id == profile_id)
        .options(*READ_OPTIONS)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(statement)).unique().scalar_one()


async def list_profiles(
    session: AsyncSession,
    principal: Principal,
    page: Page,
    *,
    username: str | None = None,
    account_number: str | None = None,
    name: str | None = None,
    tag: str | None = None,
) -> tuple[list[UserProfile], bool]:
    """Superuser all; staff the profiles of their accounts; regular users their own. Newest first."""
    statement = select(UserProfile).where(profile_scope(principal)).options(*READ_OPTIONS)
    if username is not None:
        statement = statement.where(UserProfile.user_id.in_(select(User.id).where(User.username == username)))
    if account_number is not None:
        statement = statement.where(
            UserProfile.account_id.in_(select(Account.id).where(Account.account_number == account_number))
        )
    if name is not None:
        statement = statement.where(UserProfile.name == query_name(name))
    if tag is not None:
        statement = statement.where(UserProfile.has_tag(tag.strip()))
    return await fetch_page(session, statement, page, key=UserProfile.id)


async def get_profile(session: AsyncSession, principal: Principal, profile_id: int) -> UserProfile:
    return await get_scoped(session, _readable(principal, profile_id).options(*READ_OPTIONS), not_found=NOT_FOUND)


async def create_profile(session: AsyncSession, principal: Principal, data: ProfileCreate) -> UserProfile:
    """Add an existing user to another account: superusers only (409 when already a member)."""
    require(principal.is_superuser, "Only a superuser can add a user to an account.")
    user = (await session.execute(select(User).where(User.username == data.username))).scalar_one_or_none()
    if user is None:
        raise Unprocessable.field("username", "No user has this username.")
    account = await accounts.get_by_number(session, data.account_number)
    if account is None:
        raise Unprocessable.field("accountNumber", "No account has this number.")
    profile = await add_profile(
        session,
        user,
        account,
        name=data.name,
        description=data.description,
        version=data.version,
        tags=data.tags,
        annotations=data.annotations,
        profile_image_url=data.profile_image_url,
        is_test=data.is_test,
    )
    return await _reload(session, profile.id)


async def write_metadata(session: AsyncSession, profile: UserProfile, values: dict[str, Any]) -> bool:
    """Apply metadata and profile fields (`tags` as names); `profile.tag_links` must be loaded."""
    return await tag_service.assign_tagged(session, profile, values)


async def update_profile(
    session: AsyncSession, principal: Principal, profile_id: int, data: ProfileUpdate
) -> UserProfile:
    """By the profile's user, staff of its account, or a superuser."""
    statement = _readable(principal, profile_id).options(selectinload(UserProfile.tag_links))
    profile = await get_scoped(
        session,
        statement,
        write_scope=or_(
            UserProfile.user_id == principal.user_id, account_admin_scope(principal, UserProfile.account_id)
        ),
        not_found=NOT_FOUND,
        forbidden="Only the profile's user, staff of its account or a superuser can change it.",
    )
    if await write_metadata(session, profile, data.model_dump(exclude_unset=True, by_alias=False)):
        await flush(session)
    return await _reload(session, profile.id)


async def remove_profile(session: AsyncSession, profile: UserProfile) -> None:
    """Delete a profile that is not its user's last (409), with what it owns (plugins, named keys)."""
    # Lock the user so two removals of a user's last two profiles cannot both see "one more left".
    await session.execute(select(User.id).where(User.id == profile.user_id).with_for_update())
    count = await session.scalar(
        select(func.count()).select_from(UserProfile).where(UserProfile.user_id == profile.user_id)
    )
    if (count or 0) <= 1:
        raise Conflict(LAST_PROFILE)
    # Login tokens belong to the user, not the membership: detach them instead of letting them cascade.
    await session.execute(
        update(ApiKey)
        .where(ApiKey.user_profile_id == profile.id, ApiKey.kind == KIND_LOGIN)
        .values(user_profile_id=None, account_id=None)
        .returning(ApiKey.digest)
    )
    # Memberships change, and the cascade removes keys and plugins cached under this user (`cache_rules`).
    await session.execute(delete(UserProfile).where(UserProfile.id == profile.id).returning(UserProfile.user_id))
    session.expunge(profile)


async def delete_profile(session: AsyncSession, principal: Principal, profile_id: int) -> None:
    """By staff of the profile's account or a superuser; never a user's last profile."""
    profile = await get_scoped(
        session,
        _readable(principal, profile_id),
        write_scope=account_admin_scope(principal, UserProfile.account_id),
        not_found=NOT_FOUND,
        forbidden=ADMIN_ONLY,
    )
    await remove_profile(session, profile)
