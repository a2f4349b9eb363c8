"""API keys: `/api/v1/api-keys/` (named keys; login tokens are not listed or addressable here)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.deps import PrincipalDep, SessionDep
from app.openapi import problems
from app.routers.base import resource_router
from app.routers.lists import list_response, list_responses
from app.routers.pages import PageDep
from app.schemas.api_keys import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, ApiKeyUpdate
from app.services import api_keys
from app.services.base import Page

router = resource_router(prefix="/api/v1/api-keys", tag="api-keys")

KeyRef = Annotated[
    str,
    Path(
        alias="id",
        description="The key's `keyId` (UUID), integer id or hashedId.",
        examples=["rMTAwMDAwMQx"],
    ),
]

_SCOPE = (
    "Keys are read with the ownership scope: a superuser sees every key, staff the keys of their accounts, "
    "others the keys of their own profiles (only staff users can have keys)."
)
_SUPERUSER = "Only a superuser may change a superuser's key (403)."
_AUTH_NOW = "Takes effect on the key's very next request, in every process of the deployment."
# A body is not expected, but any POST or DELETE over the size limit is refused (413) before routing.
_KEY_ACTION = problems(401, 403, 404, 413, 503)


@router.get(
    "/",
    response_model=list[ApiKeyRead],
    summary="List API keys",
    description=(
        f"Named API keys, newest first. {_SCOPE} Filter by `name`, `isActive` and `tag`; when more rows exist, "
        '`Link: <...>; rel="next"` points to the next page. Never shows a key, only its `identifier`.'
    ),
    responses=list_responses(401, 422, 503),
)
async def list_api_keys(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    query: PageDep,
    name: Annotated[str | None, Query(max_length=255, description="Exact name (normalised to snake_case).")] = None,
    is_active: Annotated[bool | None, Query(alias="isActive", description="Only active (or inactive) keys.")] = None,
    tag: Annotated[str | None, Query(max_length=100, description="Keys carrying this tag.")] = None,
) -> Response:
    async def fetch(session: AsyncSession, page: Page) -> tuple[list[ApiKeyRead], bool]:
        return await api_keys.list_keys(session, principal, page, name=name, is_active=is_active, tag=tag)

    return await list_response(request, session, query, fetch, ApiKeyRead)


@router.post(
    "/",
    status_code=201,
    response_model=ApiKeyCreated,
    summary="Create an API key",
    description=(
        "Create a key for a staff user (`username`, default you), owned by their profile in your acting account "
        "(or `accountNumber`). Only staff and superusers create keys (403); the key's user must be staff (422). "
        "Staff create keys for staff users of their own accounts (another tenant's user: 404); a superuser for "
        "any staff user; only a superuser for a superuser (403). `expiresAt` is optional and in the future. "
        "The name is normalised to snake_case and unique per owner (409). **The response's `key` is the only "
        "time the key is ever shown.**"
    ),
    responses=problems(400, 401, 403, 404, 409, 413, 422, 503),
)
async def create_api_key(principal: PrincipalDep, session: SessionDep, body: ApiKeyCreate) -> ApiKeyCreated:
    row, plaintext = await api_keys.create_key(session, principal, body)
    return ApiKeyCreated(**dict(ApiKeyRead.model_validate(row)), key=plaintext)


@router.get(
    "/{id}/",
    response_model=ApiKeyRead,
    summary="Get an API key",
    description=f"One key by `keyId`, id or hashedId. {_SCOPE} Never shows the key.",
    responses=problems(401, 404, 503),
)
async def get_api_key(id_: KeyRef, principal: PrincipalDep, session: SessionDep) -> ApiKeyRead:
    return ApiKeyRead.model_validate(await api_keys.get_key(session, principal, id_))


@router.patch(
    "/{id}/",
    response_model=ApiKeyRead,
    summary="Update an API key",
    description=(
        "Change the metadata (`name`, `description`, `version`, `tags`, `annotations`), `isActive` and "
        f"`expiresAt` (in the future, or null: never expires). {_SUPERUSER} {_AUTH_NOW}"
    ),
    responses=problems(400, 401, 403, 404, 409, 413, 422, 503),
)
async def update_api_key(id_: KeyRef, principal: PrincipalDep, session: SessionDep, body: ApiKeyUpdate) -> ApiKeyRead:
    return ApiKeyRead.model_validate(await api_keys.update_key(session, principal, id_, body))


@router.delete(
    "/{id}/",
    status_code=204,
    summary="Delete an API key",
    description=f"Delete the key. {_SUPERUSER} {_AUTH_NOW}",
    responses=_KEY_ACTION,
)
async def delete_api_key(id_: KeyRef, principal: PrincipalDep, session: SessionDep) -> Response:
    await api_keys.delete_key(session, principal, id_)
    return Response(status_code=204)


@router.post(
    "/{id}/activate/",
    response_model=ApiKeyRead,
    summary="Activate an API key",
    description=f"Set `isActive` to true (no change if it already is). {_SUPERUSER} {_AUTH_NOW}",
    responses=_KEY_ACTION,
)
async def activate_api_key(id_: KeyRef, principal: PrincipalDep, session: SessionDep) -> ApiKeyRead:
    return ApiKeyRead.model_validate(await api_keys.set_active(session, principal, id_, True))


@router.post(
    "/{id}/deactivate/",
    response_model=ApiKeyRead,
    summary="Deactivate an API key",
    description=f"Set `isActive` to false: the key stops authenticating (401). {_SUPERUSER} {_AUTH_NOW}",
    responses=_KEY_ACTION,
)
async def deactivate_api_key(id_: KeyRef, principal: PrincipalDep, session: SessionDep) -> ApiKeyRead:
    return ApiKeyRead.model_validate(await api_keys.set_active(session, principal, id_, False))


@router.post(
    "/{id}/toggle-active/",
    response_model=ApiKeyRead,
    summary="Toggle an API key",
    description=f"Flip `isActive`, atomically in the database. {_SUPERUSER} {_AUTH_NOW}",
    responses=_KEY_ACTION,
)
async def toggle_api_key(id_: KeyRef, principal: PrincipalDep, session: SessionDep) -> ApiKeyRead:
    return ApiKeyRead.model_validate(await api_keys.set_active(session, principal, id_, None))
