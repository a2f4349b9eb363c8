"""`/mcp` against a live server with the official `mcp` client over streamable HTTP.

`initialize` (protocol 2025-06-18 negotiated as asked), `tools/list` (paged with cursors), `tools/call` of a
static plugin (failures as `isError` results), the key required (401 before any MCP message), and a tenant's
tools never including another tenant's plugins.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2
import mcp_types as types
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from app.mcp_tools import PAGE_SIZE
from tests import support
from tests.live import live_server

pytestmark = pytest.mark.slow

PROTOCOL = "2025-06-18"


@dataclass
class Server:
    base_url: str
    admin_key: str
    keys: dict[str, str]

    @property
    def mcp_url(self) -> str:
        return f"{self.base_url}/mcp"


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _plugin(http: httpx.Client, key: str, name: str, static_data: dict[str, Any]) -> None:
    body = {"name": name, "data": {"description": f"The {name} facts.", "staticData": static_data}}
    _created(http.post("/api/v1/plugins/", json=body, headers={"Authorization": f"Token {key}"}))


def _tenant(http: httpx.Client, name: str) -> str:
    """A tenant account with a staff user; returns the user's key."""
    number = _created(http.post("/api/v1/accounts/", json={"name": name, "companyName": f"{name} Inc."}))[
        "accountNumber"
    ]
    username = f"{name}_staff"
    user = {"username": username, "email": f"{username}@example.com", "isStaff": True, "accountNumber": number}
    _created(http.post("/api/v1/accounts/users/", json=user))
    key = _created(http.post("/api/v1/api-keys/", json={"name": "mcp", "username": username, "accountNumber": number}))
    return str(key["key"])


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    url = asyncio.run(support.fresh_database_url())
    try:
        with live_server(url, SMARTER_CORE_ENVIRONMENT="mcp-test") as live:
            headers = {"Authorization": f"Token {live.admin_key}"}
            with httpx.Client(base_url=live.base_url, headers=headers, timeout=30) as http:
                keys = {name: _tenant(http, name) for name in ("tenant_a", "tenant_b")}
                for index in range(PAGE_SIZE + 5):  # more than a page of tools for tenant A
                    _plugin(
                        http, keys["tenant_a"], f"a_facts_{index:03d}", {"city": f"A{index}", "list": list(range(80))}
                    )
                _plugin(http, keys["tenant_b"], "b_secret", {"city": "B"})
                _plugin(http, live.admin_key, "platform_facts", {"city": "platform"})
            yield Server(base_url=live.base_url, admin_key=live.admin_key, keys=keys)
    finally:
        if url.startswith("postgresql"):
            asyncio.run(support.drop_postgres_database(url))


async def _all_tools(session: ClientSession) -> tuple[list[types.Tool], int]:
    tools: list[types.Tool] = []
    pages = 0
    cursor: str | None = None
    while True:
        page = await session.list_tools(params=types.PaginatedRequestParams(cursor=cursor))
        pages += 1
        tools.extend(page.tools)
        cursor = page.next_cursor
        if cursor is None:
            return tools, pages


async def _with_session(server: Server, key: str, scheme: str = "Bearer") -> dict[str, Any]:
    headers = {"Authorization": f"{scheme} {key}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(server.mcp_url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        initialized = await session.initialize()
        tools, pages = await _all_tools(session)
        found = await session.call_tool("a_facts_007", {"inquiry_type": "city"})
        cut = await session.call_tool("a_facts_007", {"inquiry_type": "list"})
        platform = await session.call_tool("platform_facts", {"inquiry_type": "city"})
        bad_argument = await session.call_tool("a_facts_007", {"inquiry_type": "nope"})
        other_tenant = await session.call_tool("b_secret", {"inquiry_type": "city"})
        return {
            "initialized": initialized,
            "tools": tools,
            "pages": pages,
            "found": found,
            "cut": cut,
            "platform": platform,
            "bad_argument": bad_argument,
            "other_tenant": other_tenant,
        }


def test_tools_list_and_call_for_a_tenant(server: Server) -> None:
    seen = asyncio.run(_with_session(server, server.keys["tenant_a"]))
    assert seen["initialized"].server_info.name == "smarter-core"
    assert seen["initialized"].capabilities.tools is not None
    names = [tool.name for tool in seen["tools"]]
    assert seen["pages"] == 2
    assert len(names) == len(set(names)) == PAGE_SIZE + 5 + 1
    assert "platform_facts" in names
    assert "b_secret" not in names  # never another tenant's plugin
    tool = next(tool for tool in seen["tools"] if tool.name == "a_facts_007")
    assert tool.input_schema["required"] == ["inquiry_type"]
    assert tool.input_schema["properties"]["inquiry_type"]["enum"] == ["city", "list"]
    assert tool.annotations is not None
    assert tool.annotations.read_only_hint is True
    assert tool.description == "The a_facts_007 facts."

    found = seen["found"]
    assert found.is_error is False
    assert json.loads(found.content[0].text) == "A7"
    assert found.structured_content["result"] == "A7"
    cut = seen["cut"]
    assert cut.structured_content["truncated"] is True
    assert cut.structured_content["result"] == list(range(50))
    assert json.loads(seen["platform"].content[0].text) == "platform"
    assert seen["bad_argument"].is_error is True
    assert "nope" not in seen["bad_argument"].content[0].text
    assert seen["other_tenant"].is_error is True


def test_the_other_tenant_sees_only_its_own_and_the_platforms(server: Server) -> None:
    async def run() -> list[str]:
        headers = {"Authorization": f"Token {server.keys['tenant_b']}"}  # `Token` works as `Bearer` does
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            streamable_http_client(server.mcp_url, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            tools, _ = await _all_tools(session)
            result = await session.call_tool("a_facts_001", {"inquiry_type": "city"})
            assert result.is_error is True
            return [tool.name for tool in tools]

    assert sorted(asyncio.run(run())) == ["b_secret", "platform_facts"]


def test_protocol_2025_06_18_handshake_and_raw_requests(server: Server) -> None:
    headers = {
        "Authorization": f"Bearer {server.keys['tenant_a']}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
    }
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
    }
    with httpx.Client(timeout=30) as http:
        response = http.post(server.mcp_url, json=initialize, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["result"]["protocolVersion"] == PROTOCOL
        headers["MCP-Protocol-Version"] = PROTOCOL
        listed = http.post(
            server.mcp_url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}, headers=headers
        )
        assert listed.status_code == 200, listed.text
        assert listed.json()["result"]["nextCursor"] == str(PAGE_SIZE)
        bad_cursor = http.post(
            server.mcp_url,
            json={"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {"cursor": "not-a-cursor"}},
            headers=headers,
        )
        assert bad_cursor.status_code == 200
        assert bad_cursor.json()["error"]["code"] == -32602


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer", "Bearer nonsense", "Basic abc", f"Bearer {'0' * 64}", "Token a b"]
)
def test_a_key_is_required(server: Server, authorization: str | None) -> None:
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    response = httpx.post(f"{server.base_url}/mcp", json=body, headers=headers, timeout=30)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "jsonrpc" not in response.text
