"""`app.mcp_exchange` answers a well-formed request in its own task: exactly what the session manager's
transport answers for it (each request sent both ways, the second with the exchange turned off)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from app import mcp_exchange
from tests.plugin_runtime.helpers import make_plugin
from tests.plugin_runtime.test_mcp_inputs import ACCEPT, MCP, rpc
from tests.support import World

BODIES: list[dict[str, Any]] = [
    rpc("tools/call", {"name": "facts", "arguments": {"inquiry_type": "city"}}),
    rpc("tools/call", {"name": "facts", "arguments": {"inquiry_type": "nope"}}),
    rpc("tools/call", {"name": "facts", "arguments": {}}),
    rpc("tools/call", {"name": "facts"}),
    rpc("tools/call", {"name": "unknown", "arguments": {}}),
    rpc("tools/call", {"name": 5}),
    rpc("tools/call"),
    rpc("tools/list", {}),
    rpc("tools/list"),
    rpc("tools/list", {"cursor": "x"}),
    rpc("tools/list", {"cursor": "1"}, ident="abc"),
    rpc("resources/list"),
    rpc("no/such/method"),
    rpc("ping", {"_meta": {"progressToken": 3}}),
]
ELAPSED = re.compile(r'"elapsedMs":\s*[0-9.e-]+')


async def _unanswered(*_: Any) -> None:
    return None


@pytest.mark.parametrize("version", [{}, {"MCP-Protocol-Version": "2025-03-26"}])
async def test_the_exchange_answers_as_the_session_manager(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch, version: dict[str, str]
) -> None:
    await make_plugin(client, world, "staff_a", "facts", static_data={"city": "Lisbon"})
    headers = {**world["staff_a"].headers, **ACCEPT, **version}
    direct = [await client.post(MCP, json=body, headers=headers) for body in BODIES]
    monkeypatch.setattr(mcp_exchange, "answer", _unanswered)
    managed = [await client.post(MCP, json=body, headers=headers) for body in BODIES]
    for body, ours, theirs in zip(BODIES, direct, managed, strict=True):
        assert (ours.status_code, ours.headers["content-type"]) == (theirs.status_code, theirs.headers["content-type"])
        assert ELAPSED.sub("", ours.text) == ELAPSED.sub("", theirs.text), body
