"""User profiles: `/api/v1/accounts/user-profiles/`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.deps import PrincipalDep, SessionDep
from app.models import UserProfile
from app.openapi import problems
from app.routers.base import resource_router
from app.routers.lists import list_response, list_responses
from app.routers.pages import PageDep
from app.schemas.profiles import ProfileCreate, ProfileRead, ProfileUpdate
from app.services import profiles
from app.services.base import Page, path_id

router = resource_router(prefix="/api/v1/accounts/user-profiles", tag="user-profiles")

ProfileId = Annotated[str, Path(alias="id", description="The profile's integer id or its hashedId.")]


def _id(value: str) -> int:
    return path_id(value, not_found=profiles.NOT_FOUND)


@router.get(
    "/",
    response_model=list[ProfileRead],
    summary="List user profiles",
    description=(
        "The profiles you can see, newest first: a superuser sees all, staff the profiles of their accounts, "
        "anyone else their own. Filter by `username`, `accountNumber`, `name` and `tag`; when more rows exist, "
        '`Link: <...>; rel="next"` points to the next page.'
    ),
    responses=list_responses(401, 422, 503),
)
async def list_profiles(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    query: PageDep,
    username: Annotated[str | None, Query(max_length=150, description="Profiles of this user.")] = None,
    account_number: Annotated[
        str | None, Query(alias="accountNumber", max_length=14, description="Profiles in this account.")
    ] = None,
    name: Annotated[str | None, Query(max_length=255, description="Exact name (normalised to snake_case).")] = None,
    tag: Annotated[str | None, Query(max_length=100, description="Profiles carrying this tag.")] = None,
) -> Response:
    async def fetch(session: AsyncSession, page: Page) -> tuple[list[UserProfile], bool]:
        return await profiles.list_profiles(
            session, principal, page, username=username, account_number=account_number, name=name, tag=tag
        )

    return await list_response(request, session, query, fetch, ProfileRead)


@router.post(
    "/",
    status_code=201,
    response_model=ProfileRead,
    summary="Add a user to an account",
    description=(
        "Superusers only: give the user `username` a profile in the account `accountNumber` (and a contact "
        "there for their email). A user already in that account is a 409."
    ),
    responses=problems(400, 401, 403, 409, 413, 422, 503),
)
async def create_profile(session: SessionDep, principal: PrincipalDep, body: ProfileCreate) -> ProfileRead:
    return ProfileRead.model_validate(await profiles.create_profile(session, principal, body))


@router.get(
    "/{id}/",
    response_model=ProfileRead,
    summary="Get a user profile",
    description="One profile you can see (404 for any other, whether or not it exists).",
    responses=problems(401, 404, 503),
)
async def get_profile(id_: ProfileId, session: SessionDep, principal: PrincipalDep) -> ProfileRead:
    return ProfileRead.model_validate(await profiles.get_profile(session, principal, _id(id_)))


@router.patch(
    "/{id}/",
    response_model=ProfileRead,
    summary="Update a user profile",
    description=(
        "Change the metadata (`name`, `description`, `version`, `tags`, `annotations`), `profileImageUrl` and "
        "`isTest`; by the profile's user, staff of its account, or a superuser. `user` and `account` cannot "
        "change (422)."
    ),
    responses=problems(400, 401, 403, 404, 413, 422, 503),
)
async def update_profile(
    id_: ProfileId, session: SessionDep, principal: PrincipalDep, body: ProfileUpdate
) -> ProfileRead:
    return ProfileRead.model_validate(await profiles.update_profile(session, principal, _id(id_), body))


@router.delete(
    "/{id}/",
    status_code=204,
    summary="Remove a user from an account",
    description=(
        "Delete the profile, with the plugins and API keys it owns; the user's login tokens keep working. By "
        "staff of the profile's account or a superuser. A user's last profile cannot be deleted (409): delete "
        "the user instead."
    ),
    responses=problems(401, 403, 404, 409, 503),
)
async def delete_profile(id_: ProfileId, session: SessionDep, principal: PrincipalDep) -> Response:
    await profiles.delete_profile(session, principal, _id(id_))
    return Response(status_code=204)
