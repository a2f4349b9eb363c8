"""Plugins made through the REST API for the runtime's tests."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support import World

PLUGINS = "/api/v1/plugins/"
SELECTION = "/api/v1/plugins/selection/"


async def make_plugin(
    client: httpx.AsyncClient,
    world: World,
    actor: str,
    name: str,
    *,
    directive: str = "search_terms",
    terms: list[str] | None = None,
    description: str = "",
    data_description: str = "",
    static_data: dict[str, Any] | None = None,
    prompt: dict[str, Any] | None = None,
) -> dict[str, Any]:
    selector: dict[str, Any] = {"directive": directive}
    if directive == "search_terms":
        selector["searchTerms"] = terms or [name]
    body: dict[str, Any] = {
        "name": name,
        "description": description,
        "selector": selector,
        "data": {
            "description": data_description,
            "staticData": {"answer": name} if static_data is None else static_data,
        },
    }
    if prompt is not None:
        body["prompt"] = prompt
    response = await client.post(PLUGINS, json=body, headers=world[actor].headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def select(client: httpx.AsyncClient, world: World, actor: str, prompt: str, **extra: Any) -> dict[str, Any]:
    response = await client.post(SELECTION, json={"prompt": prompt, **extra}, headers=world[actor].headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def names(answer: dict[str, Any]) -> list[str]:
    return [item["name"] for item in answer["selected"]]
