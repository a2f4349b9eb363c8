"""Accounts: creation with a random account number (retried on collision), the REST rules, the cached
lookups and the `Account` manifest (REST and manifests share every rule below).

Who may do what:
- read: superusers every account; others the accounts they have a profile in;
- create, delete, and apply manifests: superusers (the platform account is never deleted: 409);
- change: superusers, or staff of the account for `STAFF_FIELDS` only (name, version and the flags need a
  superuser); the account number never changes.

The `account` cache holds immutable snapshots keyed by `("id", id)` and `("number", number)`; every write
of an account invalidates both keys in its unit of work, and `("account", id)` too (every principal and
snapshot showing the account's members) when the flags change or the account is deleted (`cache_rules`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app import text
from app.caching.rules import ACCOUNT_CACHE as ACCOUNT_CACHE
from app.db_errors import classify_integrity_error
from app.errors import Conflict, FieldError, Forbidden, Unprocessable
from app.identifiers import ACCOUNT_NUMBER_SENTINEL, random_account_number
from app.models import KIND_LOGIN, Account, ApiKey, User, UserProfile
from app.schemas.accounts import STAFF_FIELDS, AccountCreate, AccountUpdate
from app.schemas.manifests.account import (
    AccountConfigRead,
    AccountManifest,
    AccountManifestMetadataRead,
    AccountManifestRead,
    AccountSpecRead,
    AccountStatusRead,
)
from app.services import tags as tag_service
from app.services.account_snapshots import NOT_FOUND as NOT_FOUND
from app.services.account_snapshots import AccountSnapshot as AccountSnapshot
from app.services.account_snapshots import account_cache as account_cache
from app.services.account_snapshots import cached_by_id as cached_by_id
from app.services.account_snapshots import cached_by_number as cached_by_number
from app.services.account_snapshots import readable_snapshot as readable_snapshot
from app.services.account_snapshots import resolve_path_id as resolve_path_id
from app.services.account_snapshots import snapshot_of as snapshot_of
from app.services.base import Page, fetch_page, flush, metadata_values, query_name
from app.services.permissions import (
    account_admin_scope,
    account_scope,
    get_scoped,
    require,
)
from app.services.principals import Principal
from app.text import iso_utc

NUMBER_ATTEMPTS = 8

ADMIN_ONLY = "Only staff of this account (or a superuser) can change it."
CREATE_SUPERUSER = "Only a superuser can create accounts."
DELETE_SUPERUSER = "Only a superuser can delete accounts."
APPLY_SUPERUSER = "Only a superuser can apply Account manifests."
PLATFORM_UNDELETABLE = "The platform account cannot be deleted."
NUMBER_READ_ONLY = "metadata.accountNumber is read-only: leave it out, or give this account's own number."


# --- creation ------------------------------------------------------------------------------------------------


async def create_account(
    session: AsyncSession,
    *,
    name: str,
    company_name: str,
    account_number: str | None = None,
    tags: list[str] | None = None,
    **fields: Any,
) -> Account:
    """Insert an account; a generated number that collides is drawn again (the unique index decides).

    No number, or the sentinel `9999-9999-9999`, means "generate one".
    """
    if account_number == ACCOUNT_NUMBER_SENTINEL:
        account_number = None
    tag_rows = await tag_service.resolve(session, tags or [])
    attempts = 1 if account_number is not None else NUMBER_ATTEMPTS
    for attempt in range(attempts):
        number = account_number or random_account_number()
        account = Account(name=name, company_name=company_name, account_number=number, **fields)
        account.tag_links = tag_rows
        try:
            async with session.begin_nested():
                session.add(account)
        except IntegrityError as exc:
            error = classify_integrity_error(exc)
            collided = error.errors is not None and error.errors[0].loc[-1] == "accountNumber"
            if account_number is None and collided and attempt + 1 < attempts:
                continue
            raise error from exc
        return account
    raise AssertionError("unreachable")  # pragma: no cover


async def get_by_number(session: AsyncSession, account_number: str) -> Account | None:
    return (await session.execute(select(Account).where(Account.account_number == account_number))).scalar_one_or_none()


# --- shared rules --------------------------------------------------------------------------------------------


def _readable(principal: Principal, *conditions: ColumnElement[bool]) -> Select[Account]:
    """Accounts the caller can read (with their tags), filtered by `conditions`."""
    return select(Account).where(*conditions, account_scope(principal)).options(selectinload(Account.tag_links))


async def _write(session: AsyncSession, account: Account, values: dict[str, Any]) -> bool:
    """Set what differs (`tags` as names; `account.tag_links` loaded), so the same values twice change nothing."""
    changed = await tag_service.assign_tagged(session, account, values)
    if changed:
        await flush(session)
    return changed


async def _delete(session: AsyncSession, account: Account) -> None:
    if account.is_platform:
        raise Conflict(PLATFORM_UNDELETABLE)
    # Login tokens belong to their user, not to the membership they were issued under: detach them so a
    # member of other accounts stays logged in. Profiles, contacts, plugins and named keys cascade.
    await session.execute(
        update(ApiKey)
        .where(ApiKey.account_id == account.id, ApiKey.kind == KIND_LOGIN)
        .values(user_profile_id=None, account_id=None)
        .returning(ApiKey.digest)
    )
    await session.execute(delete(Account).where(Account.id == account.id).returning(Account.id, Account.account_number))
    session.expunge(account)


# --- REST ----------------------------------------------------------------------------------------------------


async def list_accounts(
    session: AsyncSession,
    principal: Principal,
    page: Page,
    *,
    name: str | None = None,
    tag: str | None = None,
    account_number: str | None = None,
    is_active: bool | None = None,
) -> tuple[list[Account], bool]:
    """Superuser all; others the accounts they have a profile in. Newest first, tags in one extra query."""
    statement = _readable(principal)
    if name is not None:
        statement = statement.where(Account.name == query_name(name))
    if tag is not None:
        statement = statement.where(Account.has_tag(tag.strip()))
    if account_number is not None:
        statement = statement.where(Account.account_number == account_number)
    if is_active is not None:
        statement = statement.where(Account.is_active == is_active)
    return await fetch_page(session, statement, page, key=Account.id)


async def create_account_for(session: AsyncSession, principal: Principal, data: AccountCreate) -> Account:
    """Superusers only; 409 on a taken name or number, or a second default account."""
    require(principal.is_superuser, CREATE_SUPERUSER)
    return await create_account(session, **data.model_dump(by_alias=False))


def _refused_fields(principal: Principal, fields: Iterable[str]) -> list[str]:
    """The fields the caller sent but may not change (everything beyond `STAFF_FIELDS` needs a superuser)."""
    if principal.is_superuser:
        return []
    return sorted(text.to_camel_case(field) for field in set(fields) - STAFF_FIELDS)


async def update_account(session: AsyncSession, principal: Principal, account_id: int, data: AccountUpdate) -> Account:
    """Superusers, or staff of the account (limited fields); 404 outside the read scope, 403 for members."""
    account = await get_scoped(
        session,
        _readable(principal, Account.id == account_id),
        write_scope=account_admin_scope(principal, Account.id),
        not_found=NOT_FOUND,
        forbidden=ADMIN_ONLY,
    )
    values = data.model_dump(exclude_unset=True, by_alias=False)
    values.pop("account_number", None)  # never set: the schema refuses it
    refused = _refused_fields(principal, values)
    if refused:
        raise Forbidden(f"Only a superuser can change {', '.join(refused)}.")
    await _write(session, account, values)
    return account


async def delete_account(session: AsyncSession, principal: Principal, account_id: int) -> None:
    """Superusers only, never the platform account (409); profiles, contacts, plugins and keys cascade."""
    account = await get_scoped(session, _readable(principal, Account.id == account_id), not_found=NOT_FOUND)
    require(principal.is_superuser, DELETE_SUPERUSER)
    await _delete(session, account)


# --- the `Account` manifest ----------------------------------------------------------------------------------


def _not_found_by_name(name: str) -> str:
    return f"No Account named {name!r} is visible to you."


async def admin_username(session: AsyncSession, account_id: int) -> str:
    """The account's first staff user by user id, else its first user, else "" (a read never creates one)."""
    statement = (
        select(User.username)
        .join(UserProfile, UserProfile.user_id == User.id)
        .where(UserProfile.account_id == account_id)
        .order_by(User.is_staff.desc(), User.id)
        .limit(1)
    )
    return (await session.execute(statement)).scalar_one_or_none() or ""


def manifest_of(account: Account, admin: str) -> AccountManifestRead:
    """`account` must have its tags loaded."""
    return AccountManifestRead(
        metadata=AccountManifestMetadataRead(
            name=account.name,
            description=account.description,
            version=account.version,
            tags=sorted(account.tags),
            annotations=account.annotations,
            account_number=account.account_number,
        ),
        spec=AccountSpecRead(config=AccountConfigRead.model_validate(account)),
        status=AccountStatusRead(
            record_locator=account.record_locator,
            created=account.created_at,
            modified=account.updated_at,
            admin_account=admin,
        ),
    )


async def apply_manifest(
    session: AsyncSession, principal: Principal, manifest: AccountManifest
) -> tuple[AccountManifestRead, bool]:
    """Create the account named `metadata.name`, or bring it to the manifest's state (superusers only).

    Idempotent: the same manifest twice writes nothing the second time. The number of an existing account
    is read-only (422 when a different one is given); a new account takes a given number (409 when used).
    """
    require(principal.is_superuser, APPLY_SUPERUSER)
    meta = manifest.metadata
    values: dict[str, Any] = {
        **metadata_values(meta),
        "tags": meta.tags or [],
        **manifest.spec.config.model_dump(by_alias=False),
    }
    statement = select(Account).where(Account.name == meta.name).options(selectinload(Account.tag_links))
    account = (await session.execute(statement)).scalar_one_or_none()
    created = account is None
    if account is None:
        account = await create_account(session, name=meta.name, account_number=meta.account_number, **values)
    else:
        given = meta.account_number
        if given is not None and given not in (account.account_number, ACCOUNT_NUMBER_SENTINEL):
            location: list[str | int] = ["body", "metadata", "accountNumber"]
            raise Unprocessable(
                NUMBER_READ_ONLY, errors=[FieldError(loc=location, msg=NUMBER_READ_ONLY, type="read_only")]
            )
        await _write(session, account, values)
    return manifest_of(account, await admin_username(session, account.id)), created


async def describe_by_name(session: AsyncSession, principal: Principal, *, name: str) -> AccountManifestRead:
    """Any account the caller can read (as the REST detail)."""
    statement = _readable(principal, Account.name == query_name(name))
    account = await get_scoped(session, statement, not_found=_not_found_by_name(name))
    return manifest_of(account, await admin_username(session, account.id))


async def manifest_rows(session: AsyncSession, principal: Principal, *, name: str | None) -> list[dict[str, Any]]:
    """The `get` table: the accounts the caller can read (as the REST list), newest first."""
    statement = (
        select(
            Account.name,
            Account.account_number,
            Account.company_name,
            Account.is_default_account,
            Account.is_active,
            Account.created_at,
            Account.updated_at,
        )
        .where(account_scope(principal))
        .order_by(Account.id.desc())
    )
    if name is not None:
        statement = statement.where(Account.name == query_name(name))
    return [
        {
            "name": row.name,
            "accountNumber": row.account_number,
            "companyName": row.company_name,
            "isDefaultAccount": row.is_default_account,
            "isActive": row.is_active,
            "createdAt": iso_utc(row.created_at),
            "updatedAt": iso_utc(row.updated_at),
        }
        for row in (await session.execute(statement)).all()
    ]


async def delete_by_name(session: AsyncSession, principal: Principal, *, name: str) -> None:
    """Superusers only (404 first outside the read scope); never the platform account (409)."""
    statement = _readable(principal, Account.name == query_name(name))
    account = await get_scoped(session, statement, not_found=_not_found_by_name(name))
    require(principal.is_superuser, DELETE_SUPERUSER)
    await _delete(session, account)
