"""Tool definitions (`{id}/tool/`, the selection's `tools`), tool calls (`{id}/call/`) and tests (`{id}/test/`)."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from smarter.models.sam.sqlplugin import Parameter

from app.services.plugin_runtime import declared_parameters_schema
from tests.plugin_runtime.helpers import make_plugin, select
from tests.support import World

OPENAI_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
DATA = {"city": "Lisbon", "hours": {"open": 9, "close": 17}, "items": list(range(120)), "few": [1, 2]}


def schema_of(tool: dict[str, Any], shape: str) -> dict[str, Any]:
    if shape == "openai":
        assert tool["type"] == "function"
        assert set(tool["function"]) == {"name", "description", "parameters"}
        return tool["function"]["parameters"]  # type: ignore[no-any-return]
    if shape == "anthropic":
        assert set(tool) == {"name", "description", "input_schema"}
        return tool["input_schema"]  # type: ignore[no-any-return]
    assert set(tool) == {"name", "title", "description", "inputSchema", "annotations"}
    assert tool["annotations"] == {"readOnlyHint": True}
    return tool["inputSchema"]  # type: ignore[no-any-return]


def name_of(tool: dict[str, Any]) -> str:
    return str(tool["function"]["name"] if "function" in tool else tool["name"])


@pytest.mark.parametrize("shape", ["openai", "anthropic", "mcp"])
async def test_static_tool_definitions(client: httpx.AsyncClient, world: World, shape: str) -> None:
    plugin = await make_plugin(
        client,
        world,
        "staff_a",
        "City Facts: Lisbon & Porto (v2), São Tomé",
        terms=["city"],
        data_description="Facts about the city.",
        static_data=DATA,
    )
    response = await client.get(
        f"/api/v1/plugins/{plugin['id']}/tool/", params={"format": shape}, headers=world["regular_a"].headers
    )
    assert response.status_code == 200, response.text
    tool = response.json()
    assert OPENAI_NAME.match(name_of(tool))
    assert name_of(tool) == plugin["name"]
    schema = schema_of(tool, shape)
    Draft202012Validator.check_schema(schema)
    assert schema == {
        "type": "object",
        "properties": {
            "inquiry_type": {
                "type": "string",
                "description": "Which part of the plugin's data to return.",
                "enum": ["city", "few", "hours", "items"],
            }
        },
        "required": ["inquiry_type"],
        "additionalProperties": False,
    }
    description = tool["function"]["description"] if shape == "openai" else tool["description"]
    assert description == "Facts about the city."
    selected = await select(client, world, "staff_a", "city", format=shape)
    assert selected["tools"] == [tool]


async def test_tool_of_a_plugin_without_data_keys_is_still_a_valid_schema(
    client: httpx.AsyncClient, world: World
) -> None:
    plugin = await make_plugin(client, world, "staff_a", "empty", description="Nothing yet.", static_data={})
    response = await client.get(f"/api/v1/plugins/{plugin['id']}/tool/", headers=world["staff_a"].headers)
    assert response.status_code == 200, response.text
    function = response.json()["function"]
    Draft202012Validator.check_schema(function["parameters"])
    assert "enum" not in function["parameters"]["properties"]["inquiry_type"]
    assert function["description"] == "Nothing yet."  # no data description: the plugin's own
    called = await client.post(
        f"/api/v1/plugins/{plugin['id']}/call/",
        json={"arguments": {"inquiry_type": "x"}},
        headers=world["staff_a"].headers,
    )
    assert called.status_code == 422, called.text
    tested = await client.post(f"/api/v1/plugins/{plugin['id']}/test/", headers=world["staff_a"].headers)
    assert tested.status_code == 409, tested.text


def test_declared_parameters_schema_from_the_sdk_shape() -> None:
    declared = [
        Parameter(name="city", type="string", description="The city.", required=True, enum=["Lisbon", "Porto"]),
        Parameter(name="days", type="integer", default=3),
        Parameter(name="ratio", type="number"),
        Parameter(name="metric", type="boolean", required=True),
        Parameter(name="filters", type="object"),
        Parameter(name="tags", type="array"),
        Parameter(name="nothing", type="null"),
    ]
    schema = declared_parameters_schema([item.model_dump(mode="json") for item in declared])
    Draft202012Validator.check_schema(schema)
    assert schema["required"] == ["city", "metric"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["city"] == {"type": "string", "description": "The city.", "enum": ["Lisbon", "Porto"]}
    assert schema["properties"]["days"] == {"type": "integer", "default": 3}
    assert schema["properties"]["tags"] == {"type": "array", "items": {}}
    validator = Draft202012Validator(schema)
    assert validator.is_valid({"city": "Lisbon", "metric": True, "tags": [1, "a"], "nothing": None})
    assert not validator.is_valid({"city": "Faro", "metric": True})
    assert not validator.is_valid({"city": "Lisbon"})
    assert not validator.is_valid({"city": "Lisbon", "metric": True, "other": 1})
    assert declared_parameters_schema(None) == {
        "type": "object",
        "properties": {},
        "required": [],
        "additionalProperties": False,
    }


async def test_static_calls(client: httpx.AsyncClient, world: World) -> None:
    plugin = await make_plugin(client, world, "staff_a", "city_facts", static_data=DATA)
    url = f"/api/v1/plugins/{plugin['id']}/call/"
    for actor in ("staff_a", "regular_a", "superuser"):
        response = await client.post(url, json={"arguments": {"inquiry_type": "city"}}, headers=world[actor].headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["result"] == "Lisbon"
        assert body["truncated"] is False
        assert body["elapsedMs"] >= 0
    response = await client.post(url, json={"arguments": {"inquiry_type": "hours"}}, headers=world["staff_a"].headers)
    assert response.json()["result"] == {"open": 9, "close": 17}
    response = await client.post(url, json={"arguments": {"inquiry_type": "items"}}, headers=world["staff_a"].headers)
    assert response.json()["result"] == list(range(50))
    assert response.json()["truncated"] is True
    response = await client.post(url, json={"arguments": {"inquiry_type": "few"}}, headers=world["staff_a"].headers)
    assert response.json() == {"result": [1, 2], "truncated": False, "elapsedMs": response.json()["elapsedMs"]}
    # An OpenAI tool call as the model sends it.
    openai_call = {"name": "city_facts", "arguments": json.dumps({"inquiry_type": "city"})}
    response = await client.post(url, json=openai_call, headers=world["staff_a"].headers)
    assert response.status_code == 200, response.text
    assert response.json()["result"] == "Lisbon"
    tested = await client.post(f"/api/v1/plugins/{plugin['id']}/test/", headers=world["staff_a"].headers)
    assert tested.status_code == 200, tested.text
    assert tested.json()["result"] == "Lisbon"  # static plugins have no testValues: the first key, sorted


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ["body", "arguments", "inquiry_type"]),
        ({"arguments": {}}, ["body", "arguments", "inquiry_type"]),
        ({"arguments": {"inquiry_type": "nested.key"}}, ["body", "arguments", "inquiry_type"]),
        ({"arguments": {"inquiry_type": 5}}, ["body", "arguments", "inquiry_type"]),
        ({"arguments": {"inquiry_type": "city", "extra": 1}}, ["body", "arguments", "extra"]),
        ({"arguments": "not json"}, ["body", "arguments"]),
        ({"arguments": "[1, 2]"}, ["body", "arguments"]),
        ({"arguments": "[" * 100 + "]" * 100}, ["body", "arguments"]),
        ({"arguments": [1]}, None),
        ({"arguments": 5}, None),
        ({"name": "other_tool", "arguments": '{"inquiry_type": "city"}'}, ["body", "name"]),
        ({"arguments": {"inquiry_type": "city"}, "surprise": True}, None),
    ],
)
async def test_bad_arguments_are_422(
    client: httpx.AsyncClient, world: World, body: dict[str, Any], loc: list[str] | None
) -> None:
    plugin = await make_plugin(client, world, "staff_a", "city_facts", static_data=DATA)
    response = await client.post(f"/api/v1/plugins/{plugin['id']}/call/", json=body, headers=world["staff_a"].headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    if loc is not None:
        assert response.json()["errors"][0]["loc"] == loc
    assert "nested.key" not in response.text  # the values sent are not echoed


async def test_other_tenants_plugins_are_404(client: httpx.AsyncClient, world: World) -> None:
    plugin = await make_plugin(client, world, "staff_b", "tenant_b_facts", static_data=DATA)
    platform = await make_plugin(client, world, "superuser", "platform_facts", static_data=DATA)
    for route, method in (("tool/", "GET"), ("call/", "POST"), ("test/", "POST")):
        url = f"/api/v1/plugins/{plugin['id']}/{route}"
        body = {"arguments": {"inquiry_type": "city"}} if route == "call/" else None
        for actor in ("staff_a", "regular_a", "multi"):
            if actor == "multi":
                continue  # a member of both tenants reads both
            response = await client.request(method, url, json=body, headers=world[actor].headers)
            assert response.status_code == 404, (actor, route, response.text)
        for actor in ("staff_b", "superuser", "multi"):
            response = await client.request(method, url, json=body, headers=world[actor].headers)
            assert response.status_code == 200, (actor, route, response.text)
        platform_url = f"/api/v1/plugins/{platform['id']}/{route}"
        response = await client.request(method, platform_url, json=body, headers=world["regular_a"].headers)
        assert response.status_code == 200, response.text
    for bad in ("999999", "abc", "-1", "0", "1" * 40, "%00"):
        response = await client.post(
            f"/api/v1/plugins/{bad}/call/", json={"arguments": {}}, headers=world["staff_a"].headers
        )
        assert response.status_code in (404, 422), response.text
    response = await client.post(f"/api/v1/plugins/{plugin['id']}/call/", json={"arguments": {}})
    assert response.status_code == 401


async def test_tool_format_is_checked(client: httpx.AsyncClient, world: World) -> None:
    plugin = await make_plugin(client, world, "staff_a", "city_facts", static_data=DATA)
    response = await client.get(
        f"/api/v1/plugins/{plugin['id']}/tool/", params={"format": "gemini"}, headers=world["staff_a"].headers
    )
    assert response.status_code == 422, response.text


async def test_a_changed_plugin_changes_its_tool(client: httpx.AsyncClient, world: World) -> None:
    plugin = await make_plugin(client, world, "staff_a", "city_facts", static_data=DATA)
    url = f"/api/v1/plugins/{plugin['id']}/"
    headers = world["staff_a"].headers
    assert (await client.get(url + "tool/", headers=headers)).status_code == 200
    put = await client.put(url + "data/", json={"description": "New.", "staticData": {"only": 1}}, headers=headers)
    assert put.status_code == 200, put.text
    function = (await client.get(url + "tool/", headers=headers)).json()["function"]
    assert function["description"] == "New."
    assert function["parameters"]["properties"]["inquiry_type"]["enum"] == ["only"]
    response = await client.post(url + "call/", json={"arguments": {"inquiry_type": "city"}}, headers=headers)
    assert response.status_code == 422
