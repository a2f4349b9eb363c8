"""Plugins: `/api/v1/plugins/` (the flat rows, the detail with its manifest, clones and the three parts)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Body, Path, Query, Request, Response

from app.deps import PrincipalDep, RuntimeDep, SessionDep, runtime_of
from app.openapi import problems, register_request_models
from app.routers.base import resource_router
from app.routers.lists import list_responses, streamed
from app.routers.pages import link_next
from app.runtime import Runtime
from app.schemas.plugin_data import ApiDataPut, ApiDataRead, SqlDataPut, SqlDataRead
from app.schemas.plugins import (
    DATA_EXAMPLE,
    DataPut,
    DataRead,
    PluginClone,
    PluginCreate,
    PluginDetail,
    PluginListQuery,
    PluginRead,
    PluginUpdate,
    PromptPatch,
    PromptPut,
    PromptRead,
    SelectorPut,
    SelectorRead,
)
from app.services import plugins
from app.services.base import Page, path_id
from app.services.principals import Principal

router = resource_router(prefix="/api/v1/plugins", tag="plugins")

JSON = "application/json"
PluginId = Annotated[str, Path(alias="id", description="The plugin's integer id or its hashedId.")]
AccountNumberQuery = Annotated[
    str | None,
    Query(alias="accountNumber", description="Act in this account (one you belong to) instead of your first one."),
]

# FastAPI lists a 422 on every route with parameters; declaring it gives it the problem+json schema that
# a request validation error is actually rendered with.
READ_STATUSES = problems(401, 404, 422, 503)
WRITE_STATUSES = problems(400, 401, 403, 404, 413, 422, 503)


# `PUT {id}/data/` reads its body by the plugin's class (`plugins.write_class_data`).
register_request_models(DataPut, SqlDataPut, ApiDataPut)


def _id(value: str) -> int:
    return path_id(value, not_found=plugins.NOT_FOUND)


async def _part(
    runtime: Runtime, principal: Principal, id_: str, part: Literal["prompt", "selector", "data"]
) -> Response:
    """A part of a plugin the caller can read, from its snapshot's cached JSON."""
    snapshot = await plugins.readable_snapshot(runtime.reader, runtime.caches, principal, _id(id_))
    return Response(plugins.cached_part(snapshot, part), media_type=JSON)


# Declared first: routes are matched in declaration order (`app.routers`), and this is the busiest read.
# The OpenAPI document sorts its paths (`app.openapi`).
@router.get(
    "/{id}/",
    response_model=PluginDetail,
    summary="Get a plugin",
    description=(
        "The plugin's flat row plus its manifest sections `apiVersion`, `metadata`, `spec` and `status` "
        "(the SDK's `plugins.retrieve` reads it as a Manifest). Served from a cache that every write invalidates."
    ),
    responses=READ_STATUSES,
)
async def get_plugin(request: Request, id_: PluginId, principal: PrincipalDep) -> Response:
    runtime = runtime_of(request)  # not RuntimeDep: the hottest route, and a dependency is not free
    snapshot = await plugins.readable_snapshot(runtime.reader, runtime.caches, principal, _id(id_))
    return Response(plugins.detail_body(snapshot), media_type=JSON)


@router.get(
    "/",
    response_model=list[PluginRead],
    summary="List plugins",
    description=(
        "Plugins you can read, newest first: those of your accounts and the platform's (a superuser sees all). "
        "`scope=owned` narrows this to the plugins you may change. Filter by `name`, `tag`, `pluginClass` and "
        "`accountNumber`. Without `limit`, every such plugin (streamed); with `limit` (max 1000) a page, and "
        '`Link: <...>; rel="next"` points to the next one while more rows exist.'
    ),
    responses=list_responses(401, 422, 503),
)
async def list_plugins(
    request: Request, principal: PrincipalDep, query: Annotated[PluginListQuery, Query()]
) -> Response:
    runtime = runtime_of(request)  # not RuntimeDep, as for the detail: the busiest list
    filters = plugins.PluginFilters(
        scope=query.scope,
        name=query.name,
        tag=query.tag,
        plugin_class=query.plugin_class,
        account_number=query.account_number,
    )
    if query.limit is None:
        return streamed(
            await plugins.all_plugins(runtime.reader, runtime.caches, principal, filters, offset=query.offset)
        )
    page = Page(limit=query.limit, offset=query.offset)
    body, has_more = await plugins.list_plugins(runtime.reader, runtime.caches, principal, page, filters)
    response = Response(body, media_type=JSON)
    link_next(request, response, page, has_more)
    return response


@router.post(
    "/",
    status_code=201,
    response_model=PluginDetail,
    summary="Create a plugin",
    description=(
        "Create a plugin owned by your profile in your acting account (or `accountNumber`, body or query, of an "
        "account you belong to). The name is normalised to snake_case and unique per account (409). `prompt`, "
        "`selector` and `data` may be given at once; missing parts get defaults (prompt: openai / gpt-4o-mini / "
        "0.5 / 2048 tokens; selector: `llm`; static data: empty)."
    ),
    responses=problems(400, 401, 403, 409, 413, 422, 503),
)
async def create_plugin(
    principal: PrincipalDep, session: SessionDep, body: PluginCreate, account_number: AccountNumberQuery = None
) -> Response:
    plugin = await plugins.create_plugin(session, principal, body, account_number=account_number)
    return Response(plugins.detail_json(plugin), status_code=201, media_type=JSON)


@router.patch(
    "/{id}/",
    summary="Update a plugin",
    description=(
        "Change the metadata (`name`, `description`, `version`, `tags`, `annotations`); the parts have their own "
        "routes. Needs the ownership scope: staff change their accounts' plugins, others only their own (403)."
    ),
    responses=problems(400, 401, 403, 404, 409, 413, 422, 503),
)
async def update_plugin(
    id_: PluginId, principal: PrincipalDep, session: SessionDep, body: PluginUpdate
) -> PluginDetail:
    return await plugins.update_plugin(session, principal, _id(id_), body)


@router.delete(
    "/{id}/",
    status_code=204,
    summary="Delete a plugin",
    description="Delete the plugin and its parts. Needs the ownership scope (readable but not yours: 403).",
    responses=problems(401, 403, 404, 422, 503),
)
async def delete_plugin(id_: PluginId, principal: PrincipalDep, session: SessionDep) -> Response:
    await plugins.delete_plugin(session, principal, _id(id_))
    return Response(status_code=204)


@router.post(
    "/{id}/clone/",
    status_code=201,
    response_model=PluginDetail,
    summary="Clone a plugin",
    description=(
        "Copy a plugin you can read (metadata, tags, selector, prompt and data) under a new `name`, owned by your "
        "profile in your acting account (or `accountNumber`). A taken name is a 409."
    ),
    responses=problems(400, 401, 403, 404, 409, 413, 422, 503),
)
async def clone_plugin(
    id_: PluginId,
    principal: PrincipalDep,
    session: SessionDep,
    body: PluginClone,
    account_number: AccountNumberQuery = None,
) -> Response:
    clone = await plugins.clone_plugin(session, principal, _id(id_), body, account_number=account_number)
    return Response(plugins.detail_json(clone), status_code=201, media_type=JSON)


@router.get(
    "/{id}/prompt/",
    response_model=PromptRead,
    summary="Get a plugin's prompt settings",
    description="The LLM prompt settings: `provider`, `systemRole`, `model`, `temperature`, `maxCompletionTokens`.",
    responses=READ_STATUSES,
)
async def get_plugin_prompt(id_: PluginId, principal: PrincipalDep, runtime: RuntimeDep) -> Response:
    return await _part(runtime, principal, id_, "prompt")


@router.put(
    "/{id}/prompt/",
    summary="Replace a plugin's prompt settings",
    description=(
        "Replace every setting; missing ones take their defaults (openai, gpt-4o-mini, temperature 0.5, 2048 "
        "tokens). `temperature` is 0..1, `maxCompletionTokens` 1..8192 (`maxTokens` is accepted too), "
        "`systemRole` at most 32768 characters. Needs the ownership scope."
    ),
    responses=WRITE_STATUSES,
)
async def replace_plugin_prompt(
    id_: PluginId, principal: PrincipalDep, session: SessionDep, body: PromptPut
) -> PromptRead:
    return await plugins.write_prompt(session, principal, _id(id_), body)


@router.patch(
    "/{id}/prompt/",
    summary="Update a plugin's prompt settings",
    description="Change the settings given; the others keep their values. Needs the ownership scope.",
    responses=WRITE_STATUSES,
)
async def update_plugin_prompt(
    id_: PluginId, principal: PrincipalDep, session: SessionDep, body: PromptPatch
) -> PromptRead:
    return await plugins.write_prompt(session, principal, _id(id_), body)


@router.get(
    "/{id}/selector/",
    response_model=SelectorRead,
    summary="Get a plugin's selector",
    description="When the plugin is offered to the LLM: `search_terms` (with `searchTerms`), `always` or `llm`.",
    responses=READ_STATUSES,
)
async def get_plugin_selector(id_: PluginId, principal: PrincipalDep, runtime: RuntimeDep) -> Response:
    return await _part(runtime, principal, id_, "selector")


@router.put(
    "/{id}/selector/",
    summary="Replace a plugin's selector",
    description=(
        "`searchTerms` is required (non-empty) for directive `search_terms` and forbidden for `always` and `llm` "
        "(422). Needs the ownership scope."
    ),
    responses=WRITE_STATUSES,
)
async def replace_plugin_selector(
    id_: PluginId, principal: PrincipalDep, session: SessionDep, body: SelectorPut
) -> SelectorRead:
    return await plugins.write_selector(session, principal, _id(id_), body)


@router.get(
    "/{id}/data/",
    response_model=DataRead | SqlDataRead | ApiDataRead,
    summary="Get a plugin's data",
    description=(
        "The data of the plugin's class. Static: `description`, `parameters` (OpenAI function parameters) and "
        "`staticData`. SQL: `connection`, `description`, `sqlQuery`, `parameters`, `testValues`, `limit`. API: "
        "`connection`, `description`, `endpoint`, `method`, `urlParams`, `headers`, `body`, `parameters`, "
        "`testValues`, `limit`. 404 while the plugin has none."
    ),
    responses=problems(401, 404, 422, 503),
)
async def get_plugin_data(id_: PluginId, principal: PrincipalDep, runtime: RuntimeDep) -> Response:
    return await _part(runtime, principal, id_, "data")


@router.put(
    "/{id}/data/",
    response_model=DataRead | SqlDataRead | ApiDataRead,
    summary="Replace a plugin's data",
    description=(
        "The body is the data of the plugin's class, replaced as a whole. Static (`DataPut`): `parameters` must be "
        "a JSON Schema object (`type: object` with `properties`; every JSON Schema type, `boolean` included); "
        "`staticData` any object. SQL (`SqlDataPut`) and API (`ApiDataPut`): `connection` names a connection of "
        "the plugin's account and of its kind; every `{name}` placeholder must be a declared parameter; `limit` "
        "1..1000. Needs the ownership scope."
    ),
    responses=problems(400, 401, 403, 404, 413, 422, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                JSON: {
                    "example": DATA_EXAMPLE,
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/DataPut"},
                            {"$ref": "#/components/schemas/SqlDataPut"},
                            {"$ref": "#/components/schemas/ApiDataPut"},
                        ]
                    },
                }
            },
        }
    },
)
async def replace_plugin_data(
    id_: PluginId, principal: PrincipalDep, session: SessionDep, body: Annotated[dict[str, Any], Body()]
) -> DataRead | SqlDataRead | ApiDataRead:
    return await plugins.write_class_data(session, principal, _id(id_), body)
