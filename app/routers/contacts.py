"""Account contacts: `/api/v1/accounts/contacts/`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.deps import PrincipalDep, SessionDep
from app.models import AccountContact
from app.openapi import problems
from app.routers.base import resource_router
from app.routers.lists import list_response, list_responses
from app.routers.pages import PageDep
from app.schemas.contacts import ContactCreate, ContactRead, ContactUpdate
from app.services import contacts
from app.services.base import Page, path_id

router = resource_router(prefix="/api/v1/accounts/contacts", tag="contacts")

ContactId = Annotated[str, Path(alias="id", description="The contact's integer id or its hashedId.")]


def _id(value: str) -> int:
    return path_id(value, not_found=contacts.NOT_FOUND)


@router.get(
    "/",
    response_model=list[ContactRead],
    summary="List account contacts",
    description=(
        "The contacts of your accounts (a superuser: of every account), newest first. Filter by "
        '`accountNumber`, `email` and `isPrimary`; when more rows exist, `Link: <...>; rel="next"` points to '
        "the next page."
    ),
    responses=list_responses(401, 422, 503),
)
async def list_contacts(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    query: PageDep,
    account_number: Annotated[
        str | None, Query(alias="accountNumber", max_length=14, description="Contacts of this account.")
    ] = None,
    email: Annotated[str | None, Query(max_length=254, description="Exact email.")] = None,
    is_primary: Annotated[bool | None, Query(alias="isPrimary")] = None,
) -> Response:
    async def fetch(session: AsyncSession, page: Page) -> tuple[list[AccountContact], bool]:
        return await contacts.list_contacts(
            session, principal, page, account_number=account_number, email=email, is_primary=is_primary
        )

    return await list_response(request, session, query, fetch, ContactRead)


@router.post(
    "/",
    status_code=201,
    response_model=ContactRead,
    summary="Create an account contact",
    description=(
        "Staff of the account (or a superuser) add a contact to `accountNumber`, or to their acting account. "
        "Emails are unique per account (409); an account has at most one primary contact (409: "
        '"This account already has a primary contact.").'
    ),
    responses=problems(400, 401, 403, 409, 413, 422, 503),
)
async def create_contact(session: SessionDep, principal: PrincipalDep, body: ContactCreate) -> ContactRead:
    return ContactRead.model_validate(await contacts.create_contact(session, principal, body))


@router.get(
    "/{id}/",
    response_model=ContactRead,
    summary="Get an account contact",
    description="One contact of your accounts (404 for any other, whether or not it exists).",
    responses=problems(401, 404, 503),
)
async def get_contact(id_: ContactId, session: SessionDep, principal: PrincipalDep) -> ContactRead:
    return ContactRead.model_validate(await contacts.get_contact(session, principal, _id(id_)))


@router.patch(
    "/{id}/",
    response_model=ContactRead,
    summary="Update an account contact",
    description=(
        "Only the fields sent change (`phone: null` clears it); the account cannot change (422). Staff of the "
        "account or a superuser. Making a contact primary while another one is gives a 409: unset the other "
        "one first (the database decides, even for concurrent requests)."
    ),
    responses=problems(400, 401, 403, 404, 409, 413, 422, 503),
)
async def update_contact(
    id_: ContactId, session: SessionDep, principal: PrincipalDep, body: ContactUpdate
) -> ContactRead:
    return ContactRead.model_validate(await contacts.update_contact(session, principal, _id(id_), body))


@router.delete(
    "/{id}/",
    status_code=204,
    summary="Delete an account contact",
    description="Staff of the account or a superuser.",
    responses=problems(401, 403, 404, 503),
)
async def delete_contact(id_: ContactId, session: SessionDep, principal: PrincipalDep) -> Response:
    await contacts.delete_contact(session, principal, _id(id_))
    return Response(status_code=204)
