"""`/mcp` in process: odd requests get 4xx or JSON-RPC errors, never a 500; the key comes first."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.plugin_runtime.helpers import make_plugin
from tests.support import World

MCP = "/mcp"
ACCEPT = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}


def rpc(method: str, params: Any = None, ident: Any = 1) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": ident, "method": method}
    if params is not None:
        body["params"] = params
    return body


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b"[]",
        b"{}",
        b'{"jsonrpc": "2.0"}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call"}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": 5}}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x", "arguments": []}}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"cursor": "-1"}}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"cursor": "99999999999999"}}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "resources/list"}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "no/such/method"}',
        b'{"jsonrpc": "2.0", "method": "notifications/initialized"}',
        b"[" * 5000 + b"]" * 5000,
    ],
)
async def test_odd_bodies_never_500(client: httpx.AsyncClient, world: World, content: bytes) -> None:
    headers = {**world["staff_a"].headers, **ACCEPT, "Content-Type": "application/json"}
    response = await client.post(MCP, content=content, headers=headers)
    assert response.status_code < 500, response.text


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT", "PATCH"])
async def test_other_methods_never_500(client: httpx.AsyncClient, world: World, method: str) -> None:
    response = await client.request(method, MCP, headers={**world["staff_a"].headers, **ACCEPT})
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == "POST"
    assert (await client.request(method, MCP)).status_code == 401  # the key first, as for POST


async def test_wrong_content_type_and_accept(client: httpx.AsyncClient, world: World) -> None:
    body = rpc("tools/list", {})
    plain = await client.post(MCP, json=body, headers={**world["staff_a"].headers, "Accept": "text/plain"})
    assert 400 <= plain.status_code < 500, plain.text
    form = await client.post(
        MCP, content=b"a=b", headers={**world["staff_a"].headers, **ACCEPT, "Content-Type": "text/plain"}
    )
    assert 400 <= form.status_code < 500, form.text


async def test_tools_call_in_process(client: httpx.AsyncClient, world: World) -> None:
    await make_plugin(client, world, "staff_a", "facts", static_data={"city": "Lisbon"})
    await make_plugin(client, world, "staff_b", "b_facts", static_data={"city": "Porto"})
    headers = {**world["regular_a"].headers, **ACCEPT}  # a login token works as a key does
    called = await client.post(
        MCP, json=rpc("tools/call", {"name": "facts", "arguments": {"inquiry_type": "city"}}), headers=headers
    )
    assert called.status_code == 200, called.text
    assert called.json()["result"]["structuredContent"]["result"] == "Lisbon"
    hidden = await client.post(MCP, json=rpc("tools/call", {"name": "b_facts", "arguments": {}}), headers=headers)
    assert hidden.json()["result"]["isError"] is True
    listed = await client.post(MCP, json=rpc("tools/list", {}), headers=headers)
    assert [tool["name"] for tool in listed.json()["result"]["tools"]] == ["facts"]
    # Acting in another account of one's own (the shared user), or refused for an account one is not in.
    multi = {**world["multi"].headers, **ACCEPT}
    in_b = await client.post(
        f"{MCP}?accountNumber={world.account_b.account_number}", json=rpc("tools/list", {}), headers=multi
    )
    assert [tool["name"] for tool in in_b.json()["result"]["tools"]] == ["b_facts"]
    refused = await client.post(
        f"{MCP}?accountNumber={world.account_b.account_number}", json=rpc("tools/list", {}), headers=headers
    )
    assert refused.status_code == 200
    assert refused.json()["error"]["code"] == -32602


async def test_the_key_comes_first(client: httpx.AsyncClient) -> None:
    response = await client.post(MCP, content=b"not json", headers=ACCEPT)
    assert response.status_code == 401
    assert response.headers["www-authenticate"]
