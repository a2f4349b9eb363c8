"""Account contacts: read by the account's members, written by its staff (and superusers).

Uniqueness is the database's: `(account, email)` and one primary contact per account (a partial unique
index), so concurrent writers get a 409, never a second primary. Making a contact primary while another
one is does not demote the other: the client does that explicitly first.
"""

from __future__ import annotations

from sqlalchemy import Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.interfaces import ORMOption

from app.models import Account, AccountContact
from app.schemas.contacts import ContactCreate, ContactUpdate
from app.services import profiles
from app.services.base import Page, assign, fetch_page, flush
from app.services.permissions import account_admin_scope, contact_scope, get_scoped, is_account_admin, require
from app.services.principals import Principal

NOT_FOUND = "No contact with this id is visible to you."
ADMIN_ONLY = "Only staff of this account (or a superuser) can change its contacts."

READ_OPTIONS: tuple[ORMOption, ...] = (joinedload(AccountContact.account).load_only(Account.account_number),)


def _readable(principal: Principal, contact_id: int) -> Select[AccountContact]:
    return select(AccountContact).where(AccountContact.id == contact_id, contact_scope(principal))


async def list_contacts(
    session: AsyncSession,
    principal: Principal,
    page: Page,
    *,
    account_number: str | None = None,
    email: str | None = None,
    is_primary: bool | None = None,
) -> tuple[list[AccountContact], bool]:
    """The contacts of the caller's accounts (a superuser: all), newest first."""
    statement = select(AccountContact).where(contact_scope(principal)).options(*READ_OPTIONS)
    if account_number is not None:
        accounts = select(Account.id).where(Account.account_number == account_number)
        statement = statement.where(AccountContact.account_id.in_(accounts))
    if email is not None:
        statement = statement.where(AccountContact.email == email)
    if is_primary is not None:
        statement = statement.where(AccountContact.is_primary == is_primary)
    return await fetch_page(session, statement, page, key=AccountContact.id)


async def get_contact(session: AsyncSession, principal: Principal, contact_id: int) -> AccountContact:
    return await get_scoped(session, _readable(principal, contact_id).options(*READ_OPTIONS), not_found=NOT_FOUND)


async def _reload(session: AsyncSession, contact_id: int) -> AccountContact:
    statement = (
        select(AccountContact)
        .where(AccountContact.id == contact_id)
        .options(*READ_OPTIONS)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(statement)).unique().scalar_one()


async def create_contact(session: AsyncSession, principal: Principal, data: ContactCreate) -> AccountContact:
    """In the account named (`accountNumber`) or the caller's acting account; 409 on a taken email or primary."""
    account = await profiles.account_for(session, principal, data.account_number)
    require(is_account_admin(principal, account.id), ADMIN_ONLY)
    contact = AccountContact(account_id=account.id, **data.model_dump(exclude={"account_number"}, by_alias=False))
    session.add(contact)
    await flush(session)
    return await _reload(session, contact.id)


async def _writable(session: AsyncSession, principal: Principal, contact_id: int) -> AccountContact:
    return await get_scoped(
        session,
        _readable(principal, contact_id),
        write_scope=account_admin_scope(principal, AccountContact.account_id),
        not_found=NOT_FOUND,
        forbidden=ADMIN_ONLY,
    )


async def update_contact(
    session: AsyncSession, principal: Principal, contact_id: int, data: ContactUpdate
) -> AccountContact:
    contact = await _writable(session, principal, contact_id)
    if assign(contact, data.model_dump(exclude_unset=True, by_alias=False)):
        await flush(session)
    return await _reload(session, contact.id)


async def delete_contact(session: AsyncSession, principal: Principal, contact_id: int) -> None:
    contact = await _writable(session, principal, contact_id)
    await session.execute(delete(AccountContact).where(AccountContact.id == contact.id))
    session.expunge(contact)
