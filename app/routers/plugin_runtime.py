"""The plugin runtime's routes: `/api/v1/plugins/selection/`, `{id}/tool/`, `{id}/call/`, `{id}/test/`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request, Response
from pydantic_core import to_json

from app.deps import PrincipalDep, runtime_of
from app.openapi import problems
from app.routers.base import resource_router
from app.routers.plugins import JSON, PluginId
from app.runtime import Runtime
from app.schemas.plugin_runtime import (
    SelectionRequest,
    SelectionResponse,
    ToolCallRequest,
    ToolCallResponse,
    ToolFormat,
)
from app.services import plugin_runtime, plugins
from app.services.base import path_id
from app.services.principals import Principal

router = resource_router(prefix="/api/v1/plugins", tag="plugins")

CALL_STATUSES = problems(400, 401, 404, 409, 413, 422, 502, 503, 504)


async def _tool(runtime: Runtime, principal: Principal, id_: str) -> plugin_runtime.Tool:
    plugin_id = path_id(id_, not_found=plugins.NOT_FOUND)
    snapshot = await plugins.readable_snapshot(runtime.reader, runtime.caches, principal, plugin_id)
    return plugin_runtime.tool_of(runtime.caches, snapshot)


@router.post(
    "/selection/",
    response_model=SelectionResponse,
    summary="Select the plugins for a prompt",
    description=(
        "The plugins an LLM request should offer, with their tool definitions in `format`: `always` plugins, "
        "then `search_terms` plugins whose term matches the prompt or a `user` turn of `history` (whole words, "
        "any order, one typo allowed in words of 6+ letters), then `llm` plugins ranked by BM25 relevance to the "
        "prompt; at most `maxTools`. Among your acting account's plugins (or `accountNumber`'s) and the "
        "platform's; on a name both use, yours."
    ),
    responses=problems(400, 401, 413, 422, 503),
)
async def select_plugins(request: Request, principal: PrincipalDep, body: SelectionRequest) -> Response:
    runtime = runtime_of(request)
    await runtime.schema.ensure(runtime.engine)
    account_id = await plugin_runtime.acting_account_id(
        runtime.sessionmaker, principal, body.account_number, where="body"
    )
    answer = await plugin_runtime.selection(runtime.reader, runtime.caches, principal, account_id, body)
    return Response(answer, media_type=JSON)


@router.get(
    "/{id}/tool/",
    summary="Get a plugin's tool definition",
    description=(
        "The plugin as an LLM tool: `openai` (`{type: function, function: {name, description, parameters}}`), "
        "`anthropic` (`{name, description, input_schema}`) or `mcp` (`{name, title, description, inputSchema, "
        "annotations}`). 409 for a plugin class this server cannot run."
    ),
    responses=problems(401, 404, 409, 422, 503),
)
async def get_plugin_tool(
    request: Request,
    id_: PluginId,
    principal: PrincipalDep,
    format_: Annotated[ToolFormat, Query(alias="format", description="The tool shape.")] = "openai",
) -> Response:
    tool = await _tool(runtime_of(request), principal, id_)
    return Response(to_json(tool.definition(format_)), media_type=JSON)


@router.post(
    "/{id}/call/",
    response_model=ToolCallResponse,
    summary="Call a plugin as a tool",
    description=(
        'Answer an LLM\'s tool call: `{"arguments": {...}}`, or the OpenAI tool call `{"name", "arguments": '
        '"<JSON text>"}`. The arguments are validated against the tool\'s parameters first (422, nothing runs). '
        "Static plugins answer `staticData[inquiry_type]` (lists cut to 50, `truncated`)."
    ),
    responses=CALL_STATUSES,
)
async def call_plugin(request: Request, id_: PluginId, principal: PrincipalDep, body: ToolCallRequest) -> Response:
    runtime = runtime_of(request)
    tool = await _tool(runtime, principal, id_)
    arguments = plugin_runtime.arguments_of(body.arguments, body.name, tool.snapshot.view.name)
    result = await plugin_runtime.call(tool, arguments, runtime.call_context(principal))
    return Response(to_json(result.body()), media_type=JSON)


@router.post(
    "/{id}/test/",
    response_model=ToolCallResponse,
    summary="Test a plugin",
    description=(
        "Run the plugin's tool call with its `testValues`. Static plugins have none: the test asks for the first "
        "key of `staticData` in sorted order (409 when it is empty)."
    ),
    responses=CALL_STATUSES,
)
async def test_plugin(request: Request, id_: PluginId, principal: PrincipalDep) -> Response:
    runtime = runtime_of(request)
    tool = await _tool(runtime, principal, id_)
    result = await plugin_runtime.test(tool, runtime.call_context(principal))
    return Response(to_json(result.body()), media_type=JSON)


# What an LLM application calls on every turn: matched right after the plugin list (`app.routers.routes`).
EVERY_TURN = (select_plugins, call_plugin)
