"""Accounts (tenants): `/api/v1/accounts/`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.deps import PrincipalDep, RuntimeDep, SessionDep
from app.models import Account
from app.openapi import problems
from app.routers.base import resource_router
from app.routers.lists import list_response, list_responses
from app.routers.pages import PageDep
from app.schemas.accounts import AccountCreate, AccountRead, AccountUpdate
from app.services import accounts
from app.services.base import Page

router = resource_router(prefix="/api/v1/accounts", tag="accounts")

JSON = "application/json"
AccountId = Annotated[
    str,
    Path(
        alias="id",
        max_length=64,
        description="The account's integer id, its hashedId, or its account number (`DDDD-DDDD-DDDD`).",
        examples=["1", "rMTAwMDAwMQx", "3141-5926-5359"],
    ),
]


async def _id(runtime: RuntimeDep, value: str) -> int:
    return await accounts.resolve_path_id(runtime.autocommit, runtime.caches, value)


@router.get(
    "/",
    response_model=list[AccountRead],
    summary="List accounts",
    description=(
        "The accounts you can see, newest first: a superuser sees every account, anyone else the accounts they "
        "have a profile in. Filter by `name` (normalised to snake_case), `tag`, `accountNumber` and `isActive`; "
        'when more rows exist, `Link: <...>; rel="next"` points to the next page.'
    ),
    responses=list_responses(401, 422, 503),
)
async def list_accounts(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    query: PageDep,
    name: Annotated[str | None, Query(max_length=255, description="Exact name (normalised to snake_case).")] = None,
    tag: Annotated[str | None, Query(max_length=100, description="Accounts carrying this tag.")] = None,
    account_number: Annotated[
        str | None, Query(alias="accountNumber", max_length=14, description="The account with this number.")
    ] = None,
    is_active: Annotated[bool | None, Query(alias="isActive")] = None,
) -> Response:
    async def fetch(session: AsyncSession, page: Page) -> tuple[list[Account], bool]:
        return await accounts.list_accounts(
            session, principal, page, name=name, tag=tag, account_number=account_number, is_active=is_active
        )

    return await list_response(request, session, query, fetch, AccountRead)


@router.post(
    "/",
    status_code=201,
    response_model=AccountRead,
    summary="Create an account",
    description=(
        "Superusers only (403 otherwise). The name is normalised to snake_case and unique (409). The account "
        "number is generated (`DDDD-DDDD-DDDD`, random, retried on collision) unless a valid, unused one is "
        "given (malformed: 422; used: 409). At most one account is the default: a second one is a 409. "
        "Defaults: country `USA`, language `EN`, currency `USD`."
    ),
    responses=problems(400, 401, 403, 409, 413, 422, 503),
)
async def create_account(session: SessionDep, principal: PrincipalDep, body: AccountCreate) -> AccountRead:
    return AccountRead.model_validate(await accounts.create_account_for(session, principal, body))


@router.get(
    "/{id}/",
    response_model=AccountRead,
    summary="Get an account",
    description=(
        "One account you can see (404 for any other, whether or not it exists), by id, hashedId or account "
        "number. Served from a cache that every write of the account invalidates."
    ),
    responses=problems(401, 404, 422, 503),
)
async def get_account(id_: AccountId, runtime: RuntimeDep, principal: PrincipalDep) -> Response:
    snapshot = await accounts.readable_snapshot(runtime.autocommit, runtime.caches, principal, await _id(runtime, id_))
    return Response(snapshot.detail, media_type=JSON)


@router.patch(
    "/{id}/",
    response_model=AccountRead,
    summary="Update an account",
    description=(
        "Only the fields sent change (`null` clears an address field). A superuser may change every field; staff "
        "of the account only `description`, `tags`, `annotations`, `companyName`, `phoneNumber`, the address "
        "fields, `country`, `language`, `timezone` and `currency` (any other field: 403). Other members get a "
        "403, anyone else a 404. `accountNumber` never changes (422). Making a second account the default is a "
        "409: unset the current default first."
    ),
    responses=problems(400, 401, 403, 404, 409, 413, 422, 503),
)
async def update_account(
    id_: AccountId, runtime: RuntimeDep, session: SessionDep, principal: PrincipalDep, body: AccountUpdate
) -> AccountRead:
    account = await accounts.update_account(session, principal, await _id(runtime, id_), body)
    return AccountRead.model_validate(account)


@router.delete(
    "/{id}/",
    status_code=204,
    summary="Delete an account",
    description=(
        "Superusers only. Deletes the account's profiles, contacts, plugins and API keys with it (its members' "
        "login tokens survive); the platform account cannot be deleted (409). Takes effect on the members' "
        "very next request."
    ),
    responses=problems(401, 403, 404, 409, 422, 503),
)
async def delete_account(id_: AccountId, runtime: RuntimeDep, session: SessionDep, principal: PrincipalDep) -> Response:
    await accounts.delete_account(session, principal, await _id(runtime, id_))
    return Response(status_code=204)
