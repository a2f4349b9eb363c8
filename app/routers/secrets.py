"""Secrets: `/api/v1/secrets/` (SAM kind `Secret`). The value is write-only: no response ever carries it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.deps import PrincipalDep, RuntimeDep, SessionDep
from app.openapi import problems
from app.routers.base import resource_router
from app.routers.lists import list_response, list_responses
from app.routers.pages import PageDep
from app.schemas.secrets import SecretCreate, SecretRead, SecretUpdate
from app.services import secrets
from app.services.base import Page

router = resource_router(prefix="/api/v1/secrets", tag="secrets")

SecretRef = Annotated[
    str, Path(alias="id", description="The secret's integer id or hashedId.", examples=["rMTAwMDAwMQx"])
]

_SCOPE = (
    "Secrets are read and written with the ownership scope, like API keys: a superuser sees every secret, "
    "staff the secrets of their accounts, others the secrets of their own profiles (any other: 404)."
)
_NEVER = "The value is never returned, in any form."


@router.get(
    "/",
    response_model=list[SecretRead],
    summary="List secrets",
    description=(
        f"Secrets, newest first. {_SCOPE} Filter by `name` and `tag`. Without `limit` the list is complete; "
        f'with it, `Link: <...>; rel="next"` points to the next page. {_NEVER}'
    ),
    responses=list_responses(401, 422, 503),
)
async def list_secrets(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    query: PageDep,
    name: Annotated[str | None, Query(max_length=255, description="Exact name (normalised to snake_case).")] = None,
    tag: Annotated[str | None, Query(max_length=100, description="Secrets carrying this tag.")] = None,
) -> Response:
    async def fetch(session: AsyncSession, page: Page) -> tuple[list[SecretRead], bool]:
        return await secrets.list_secrets(session, principal, page, name=name, tag=tag)

    return await list_response(request, session, query, fetch, SecretRead)


@router.post(
    "/",
    status_code=201,
    response_model=SecretRead,
    summary="Create a secret",
    description=(
        "Create a secret owned by your profile in your acting account (or `accountNumber`, an account you "
        "belong to). `value` is required (at most 64 KiB) and encrypted at rest. The name is normalised to "
        f"snake_case and unique per account (409). `expiresAt` is optional and in the future. {_NEVER}"
    ),
    responses=problems(400, 401, 409, 413, 422, 503),
)
async def create_secret(
    principal: PrincipalDep, session: SessionDep, runtime: RuntimeDep, body: SecretCreate
) -> SecretRead:
    return await secrets.create_secret(session, runtime.cipher, principal, body)


@router.get(
    "/{id}/",
    response_model=SecretRead,
    summary="Get a secret",
    description=f"One secret by id or hashedId. {_SCOPE} {_NEVER}",
    responses=problems(401, 404, 503),
)
async def get_secret(id_: SecretRef, principal: PrincipalDep, session: SessionDep) -> SecretRead:
    return await secrets.get_secret(session, principal, id_)


@router.patch(
    "/{id}/",
    response_model=SecretRead,
    summary="Update a secret",
    description=(
        "Rotate the value (`value`), change the metadata (`name`, `description`, `version`, `tags`, "
        "`annotations`) or `expiresAt` (in the future, or null: never expires). The connections that use the "
        f"secret use the new value from their next call. {_NEVER}"
    ),
    responses=problems(400, 401, 404, 409, 413, 422, 503),
)
async def update_secret(
    id_: SecretRef, principal: PrincipalDep, session: SessionDep, runtime: RuntimeDep, body: SecretUpdate
) -> SecretRead:
    return await secrets.update_secret(session, runtime.cipher, principal, id_, body)


@router.delete(
    "/{id}/",
    status_code=204,
    summary="Delete a secret",
    description="Delete the secret; 409 naming the connections that still use it.",
    responses=problems(401, 404, 409, 413, 503),
)
async def delete_secret(id_: SecretRef, principal: PrincipalDep, session: SessionDep) -> Response:
    await secrets.delete_secret(session, principal, id_)
    return Response(status_code=204)
