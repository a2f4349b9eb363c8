"""Users: creation (with a hashed password), lookups, the REST rules and the `User` manifest.

Who may change a user:
- a user may change their own names, email and password (self-service);
- staff manage (flags included) the users every one of whose accounts they administer, never a superuser
  (`permissions.user_manage_scope`: a user shared with another tenant is a superuser's to change);
- only a superuser grants or revokes `isSuperuser`.
A new password ends all of the user's login tokens (`set_password`). Every change of a user invalidates
`("user", id)` (derived by `cache_rules` from the rows written): their principals (flags, memberships)
and any cached snapshot showing their name or email are reloaded on the very next request.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.errors import Conflict, NotFound
from app.models import Account, User, UserProfile
from app.schemas.manifests.user import (
    UserConfigRead,
    UserManifest,
    UserManifestMetadataRead,
    UserManifestRead,
    UserSpecRead,
    UserStatusRead,
)
from app.schemas.users import UserCreate, UserUpdate
from app.services import api_keys, passwords, profiles
from app.services.base import Page, assign, fetch_page, flush, metadata_values
from app.services.permissions import (
    STAFF_ONLY,
    SUPERUSER_TARGET,
    Acting,
    UserRights,
    acting_required,
    is_account_admin,
    require,
    user_rights,
    user_rights_statement,
    user_scope,
)
from app.services.principals import Principal
from app.text import iso_utc

NOT_FOUND = "No user with this id is visible to you."
SUPERUSER_FLAG = "Only a superuser can grant or revoke isSuperuser."
FLAGS_NEED_STAFF = "Only staff can change isStaff or isActive."
NOT_YOURSELF = "You cannot delete your own user."
TAKEN_ELSEWHERE = "A user with this username already exists in another account."


async def create_user(
    session: AsyncSession,
    *,
    username: str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    password: str | None = None,
    is_staff: bool = False,
    is_superuser: bool = False,
    is_active: bool = True,
) -> User:
    """A new user; without a password the user can only use API keys (409 if the username is taken)."""
    user = User(
        username=username,
        email=email,
        first_name=first_name,
        last_name=last_name,
        password=await passwords.hash_password(password) if password else "",
        is_staff=is_staff,
        is_superuser=is_superuser,
        is_active=is_active,
    )
    session.add(user)
    await flush(session)
    return user


async def get_by_username(session: AsyncSession, username: str) -> User | None:
    return (await session.execute(select(User).where(User.username == username))).scalar_one_or_none()


async def set_password(session: AsyncSession, user: User, password: str) -> None:
    """Hash and store a new password; every login token of the user ends (named API keys do not), in every
    process once this unit of work commits."""
    user.password = await passwords.hash_password(password)
    await flush(session)
    await api_keys.revoke_login_tokens(session, user.id)


# --- scopes -------------------------------------------------------------------------------------------------


async def _visible(
    session: AsyncSession, principal: Principal, condition: ColumnElement[bool], not_found: str
) -> UserRights:
    """The user and the caller's rights on them, in one query; 404 outside the read scope."""
    rights = await user_rights(session, user_rights_statement(principal).where(condition, user_scope(principal)))
    if rights is None:
        raise NotFound(not_found)
    return rights


# --- REST ---------------------------------------------------------------------------------------------------


async def list_users(
    session: AsyncSession,
    principal: Principal,
    page: Page,
    *,
    username: str | None = None,
    is_active: bool | None = None,
    account_number: str | None = None,
) -> tuple[list[User], bool]:
    """Superuser all; staff the users of their accounts; regular users themselves. Newest first."""
    statement = select(User).where(user_scope(principal))
    if username is not None:
        statement = statement.where(User.username == username)
    if is_active is not None:
        statement = statement.where(User.is_active == is_active)
    if account_number is not None:
        members = (
            select(UserProfile.user_id)
            .join(Account, Account.id == UserProfile.account_id)
            .where(Account.account_number == account_number)
        )
        statement = statement.where(User.id.in_(members))
    return await fetch_page(session, statement, page, key=User.id)


async def get_user(session: AsyncSession, principal: Principal, user_id: int) -> User:
    user = (await _visible(session, principal, User.id == user_id, NOT_FOUND)).user
    return user


def _check_privileges(principal: Principal, changed: set[str]) -> None:
    if "is_superuser" in changed:
        require(principal.is_superuser, SUPERUSER_FLAG)
    if changed & {"is_staff", "is_active"}:
        require(principal.is_staff or principal.is_superuser, FLAGS_NEED_STAFF)


async def create_user_for(session: AsyncSession, principal: Principal, data: UserCreate) -> User:
    """A user with a profile (and a contact) in the caller's acting account, or the account named."""
    require(principal.is_staff or principal.is_superuser, "Only staff can create users.")
    _check_privileges(principal, {"is_superuser"} if data.is_superuser else set())
    account = await profiles.account_for(session, principal, data.account_number)
    user = await create_user(
        session,
        username=data.username,
        email=data.email,
        first_name=data.first_name,
        last_name=data.last_name,
        password=data.password,
        is_staff=data.is_staff,
        is_superuser=data.is_superuser,
        is_active=data.is_active,
    )
    await profiles.add_profile(session, user, account)
    return user


async def _write_user(session: AsyncSession, user: User, values: dict[str, Any]) -> bool:
    """Set what differs (the password is re-hashed when given); invalidates the user's caches on change."""
    values = dict(values)
    password = values.pop("password", None)
    changed = assign(user, values)
    if password is not None:
        await set_password(session, user, password)
        changed = True
    if changed:
        await flush(session)
    return changed


async def update_user(session: AsyncSession, principal: Principal, user_id: int, data: UserUpdate) -> User:
    rights = await _visible(session, principal, User.id == user_id, NOT_FOUND)
    user = rights.user
    if user.id != principal.user_id:
        rights.require_manageable(principal)
    values = data.model_dump(exclude_unset=True, by_alias=False)
    # A value equal to the current one is not a change: clients may send back what they read.
    changed = {key for key, value in values.items() if key == "password" or getattr(user, key) != value}
    _check_privileges(principal, changed)
    await _write_user(session, user, values)
    return user


def _check_removal(principal: Principal, user: User) -> None:
    require(principal.is_staff or principal.is_superuser, "Only staff can delete users.")
    if user.id == principal.user_id:
        raise Conflict(NOT_YOURSELF)


async def _delete_user(session: AsyncSession, principal: Principal, rights: UserRights) -> None:
    # Staff may not erase a user other tenants still have: that would be a write outside their accounts.
    rights.require_manageable(principal)
    user = rights.user
    # The database cascades to profiles, keys and owned plugins; account contacts are the accounts' records.
    await session.execute(delete(User).where(User.id == user.id).returning(User.id))
    session.expunge(user)


async def delete_user(session: AsyncSession, principal: Principal, user_id: int) -> None:
    """Staff of every account the user belongs to, or a superuser; never a superuser (unless one), never yourself."""
    rights = await _visible(session, principal, User.id == user_id, NOT_FOUND)
    _check_removal(principal, rights.user)
    await _delete_user(session, principal, rights)


# --- the `User` manifest ------------------------------------------------------------------------------------


def _acting(acting: Acting | None) -> tuple[int, str]:
    required = acting_required(acting)
    return required.account_id, required.account_number


def _not_found_by_name(username: str) -> str:
    return f"No User named {username!r} is visible to you."


async def _profile_in(session: AsyncSession, user_id: int, account_id: int) -> UserProfile | None:
    statement = (
        select(UserProfile)
        .where(UserProfile.user_id == user_id, UserProfile.account_id == account_id)
        .options(selectinload(UserProfile.tag_links))
    )
    return (await session.execute(statement)).scalar_one_or_none()


def manifest_of(user: User, profile: UserProfile | None, account_number: str) -> UserManifestRead:
    """`profile` is the user's profile in the acting account (tags loaded), if they have one there."""
    modified = max(user.updated_at, profile.updated_at) if profile else user.updated_at
    return UserManifestRead(
        metadata=UserManifestMetadataRead(
            name=profile.name if profile else profiles.profile_name(user.username),
            description=profile.description if profile else "",
            version=profile.version if profile else "1.0.0",
            tags=profile.tags if profile else [],
            annotations=profile.annotations if profile else [],
            username=user.username,
        ),
        spec=UserSpecRead(
            config=UserConfigRead(
                email=user.email,
                first_name=user.first_name,
                last_name=user.last_name,
                is_active=user.is_active,
                is_staff=user.is_staff,
            )
        ),
        status=UserStatusRead(
            record_locator=user.record_locator,
            created=user.created_at,
            modified=modified,
            username=user.username,
            account_number=account_number,
        ),
    )


async def apply_manifest(
    session: AsyncSession, principal: Principal, manifest: UserManifest, *, acting: Acting | None
) -> tuple[UserManifestRead, bool]:
    """Create the user with a profile in the acting account, or update a user of the acting account.

    A username taken only in other accounts is a 409 for staff; a superuser adds a profile here. The
    user found by username is never touched unless it is a member of the acting account or the caller
    is a superuser (the original changed any tenant's user). Idempotent: the same manifest twice writes
    nothing the second time.
    """
    require(principal.is_staff or principal.is_superuser, "Only staff can apply User manifests.")
    account_id, account_number = _acting(acting)
    meta, config = manifest.metadata, manifest.spec.config
    user_values: dict[str, Any] = {
        "email": config.email,
        "first_name": config.first_name or "",
        "last_name": config.last_name or "",
        "is_active": config.is_active,
        "is_staff": config.is_staff,
    }
    profile_values: dict[str, Any] = {
        "name": meta.name,
        **metadata_values(meta),
        "tags": meta.tags or [],
    }

    found = await user_rights(session, user_rights_statement(principal).where(User.username == meta.username))
    created = found is None
    if found is None:
        user = await create_user(session, username=meta.username, **user_values)
        profile = None
    else:
        user = found.user
        profile = await _profile_in(session, user.id, account_id)
        if profile is None and not principal.is_superuser:
            raise Conflict(TAKEN_ELSEWHERE)
        if user.id != principal.user_id:
            found.require_manageable(principal)
        changed = {key for key, value in user_values.items() if getattr(user, key) != value}
        _check_privileges(principal, changed)
        await _write_user(session, user, user_values)
    if profile is None:
        account = await session.get(Account, account_id)
        if account is None:
            raise Conflict("Your account no longer exists.")
        profile = await profiles.add_profile(session, user, account, **profile_values)
    elif await profiles.write_metadata(session, profile, profile_values):
        await flush(session)
    return manifest_of(user, profile, account_number), created


async def describe_by_username(
    session: AsyncSession, principal: Principal, *, username: str, acting: Acting | None
) -> UserManifestRead:
    """Any user the caller can read; the metadata is their profile's in the acting account."""
    account_id, account_number = _acting(acting)
    user = (await _visible(session, principal, User.username == username, _not_found_by_name(username))).user
    profile = await _profile_in(session, user.id, account_id)
    return manifest_of(user, profile, account_number)


async def manifest_rows(
    session: AsyncSession, principal: Principal, *, username: str | None, acting: Acting | None
) -> list[dict[str, Any]]:
    """The `get` table: the users the caller can read (as the REST list), newest first."""
    account_id = acting.account_id if acting else None
    here = and_(UserProfile.user_id == User.id, UserProfile.account_id == account_id)
    statement = (
        select(
            User.username,
            UserProfile.name,
            User.email,
            User.first_name,
            User.last_name,
            User.is_active,
            User.is_staff,
            User.is_superuser,
            User.created_at,
            User.updated_at,
        )
        .outerjoin(UserProfile, here)
        .where(user_scope(principal))
        .order_by(User.id.desc())
    )
    if username is not None:
        statement = statement.where(User.username == username)
    return [
        {
            "name": row.name or profiles.profile_name(row.username),
            "username": row.username,
            "email": row.email,
            "firstName": row.first_name,
            "lastName": row.last_name,
            "isActive": row.is_active,
            "isStaff": row.is_staff,
            "isSuperuser": row.is_superuser,
            "createdAt": iso_utc(row.created_at),
            "updatedAt": iso_utc(row.updated_at),
        }
        for row in (await session.execute(statement)).all()
    ]


async def delete_by_username(
    session: AsyncSession, principal: Principal, *, username: str, acting: Acting | None
) -> None:
    """Remove the user from the acting account; the user itself goes when that was their only account.

    Removing a profile from an account the caller administers is theirs to do (as `DELETE /profiles/{id}`);
    deleting the user is `permissions.user_manage_scope`'s.
    """
    rights = await _visible(session, principal, User.username == username, _not_found_by_name(username))
    user = rights.user
    _check_removal(principal, user)
    account_id, _ = _acting(acting)
    memberships = (await session.execute(select(UserProfile).where(UserProfile.user_id == user.id))).scalars().all()
    here = next((p for p in memberships if p.account_id == account_id), None)
    if here is not None and len(memberships) > 1:
        require(is_account_admin(principal, account_id), STAFF_ONLY)
        require(principal.is_superuser or not user.is_superuser, SUPERUSER_TARGET)
        await profiles.remove_profile(session, here)
        return
    await _delete_user(session, principal, rights)
