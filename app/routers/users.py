"""Users: `/api/v1/accounts/users/`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.deps import PrincipalDep, SessionDep
from app.models import User
from app.openapi import problems
from app.routers.base import resource_router
from app.routers.lists import list_response, list_responses
from app.routers.pages import PageDep
from app.schemas.users import UserCreate, UserRead, UserUpdate
from app.services import users
from app.services.base import Page, path_id

router = resource_router(prefix="/api/v1/accounts/users", tag="users")

UserId = Annotated[str, Path(alias="id", description="The user's integer id or its hashedId.")]
AccountNumberQuery = Annotated[
    str | None,
    Query(alias="accountNumber", max_length=14, description="Create the user's profile in this account."),
]


def _id(value: str) -> int:
    return path_id(value, not_found=users.NOT_FOUND)


@router.get(
    "/",
    response_model=list[UserRead],
    summary="List users",
    description=(
        "The users you can see, newest first: a superuser sees every user, staff the users of their accounts, "
        "anyone else only themselves. Filter by `username` (or its alias `name`), `isActive` and "
        '`accountNumber`; when more rows exist, `Link: <...>; rel="next"` points to the next page.'
    ),
    responses=list_responses(401, 422, 503),
)
async def list_users(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    query: PageDep,
    username: Annotated[str | None, Query(max_length=150, description="Exact username.")] = None,
    name: Annotated[str | None, Query(max_length=150, description="Alias of `username`.")] = None,
    is_active: Annotated[bool | None, Query(alias="isActive")] = None,
    account_number: Annotated[
        str | None, Query(alias="accountNumber", max_length=14, description="Members of this account.")
    ] = None,
) -> Response:
    async def fetch(session: AsyncSession, page: Page) -> tuple[list[User], bool]:
        return await users.list_users(
            session, principal, page, username=username or name, is_active=is_active, account_number=account_number
        )

    return await list_response(request, session, query, fetch, UserRead)


@router.post(
    "/",
    status_code=201,
    response_model=UserRead,
    summary="Create a user",
    description=(
        "Staff and superusers create a user with a profile in their acting account (a superuser may name any "
        "`accountNumber`, staff only one of theirs) and the account contact for the user's email. Only a "
        "superuser may set `isSuperuser`. The optional `password` is stored as an argon2 hash and never "
        "returned. A taken username is a 409."
    ),
    responses=problems(400, 401, 403, 409, 413, 422, 503),
)
async def create_user(
    session: SessionDep, principal: PrincipalDep, body: UserCreate, account_number: AccountNumberQuery = None
) -> UserRead:
    if body.account_number is None and account_number is not None:
        body = body.model_copy(update={"account_number": account_number})
    return UserRead.model_validate(await users.create_user_for(session, principal, body))


@router.get(
    "/{id}/",
    response_model=UserRead,
    summary="Get a user",
    description="One user you can see (404 for anyone else, whether or not they exist).",
    responses=problems(401, 404, 503),
)
async def get_user(id_: UserId, session: SessionDep, principal: PrincipalDep) -> UserRead:
    return UserRead.model_validate(await users.get_user(session, principal, _id(id_)))


@router.patch(
    "/{id}/",
    response_model=UserRead,
    summary="Update a user",
    description=(
        "Only the fields sent change. You may change your own `firstName`, `lastName`, `email` and `password`. "
        "Staff manage the users of their accounts, flags included (`isStaff`, `isActive`), but never a "
        "superuser (403); only a superuser changes `isSuperuser`. Any change takes effect on the user's very "
        "next request (a user who loses `isStaff` can no longer use their API keys)."
    ),
    responses=problems(400, 401, 403, 404, 413, 422, 503),
)
async def update_user(id_: UserId, session: SessionDep, principal: PrincipalDep, body: UserUpdate) -> UserRead:
    return UserRead.model_validate(await users.update_user(session, principal, _id(id_), body))


@router.delete(
    "/{id}/",
    status_code=204,
    summary="Delete a user",
    description=(
        "Delete the user with their profiles, API keys and plugins (account contacts stay). Staff may delete "
        "users who belong only to accounts they administer (otherwise 403: remove the user's profile instead); "
        "only a superuser deletes a superuser. Deleting yourself is a 409."
    ),
    responses=problems(401, 403, 404, 409, 503),
)
async def delete_user(id_: UserId, session: SessionDep, principal: PrincipalDep) -> Response:
    await users.delete_user(session, principal, _id(id_))
    return Response(status_code=204)
