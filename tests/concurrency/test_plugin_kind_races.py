"""Concurrent identical creates of SQL and API plugins (REST and manifests): one success and 409s, one plugin
with one data row, on SQLite and PostgreSQL (see `test_races` for how the racers are made to overlap)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.models import PluginDataApi, PluginDataSql, PluginMeta
from app.runtime import Runtime
from tests.concurrency.test_races import RACERS, assert_one_winner, count, race
from tests.plugin_kinds import api_data, connection, sql_data
from tests.support import World

PLUGINS = "/api/v1/plugins/"
KINDS = {"sql": ("sqlData", sql_data, PluginDataSql), "api": ("apiData", api_data, PluginDataApi)}


@pytest.mark.parametrize("plugin_class", ["sql", "api"])
async def test_rest_creates_of_one_name(
    client: httpx.AsyncClient, world: World, runtime: Runtime, plugin_class: str
) -> None:
    field, data, model = KINDS[plugin_class]
    await connection(runtime, plugin_class, world["staff_a"].profile, "shared")

    def body(n: int) -> dict[str, Any]:
        return {
            "name": "Race Plugin",
            "pluginClass": plugin_class,
            "connection": "shared",
            field: data(description=f"racer {n}"),
        }

    headers = world["regular_a"].headers
    responses = await race(runtime, [client.post(PLUGINS, json=body(n), headers=headers) for n in range(RACERS)])
    winner = assert_one_winner(responses, 201, "name").json()
    assert winner["kind"] == ("SqlPlugin" if plugin_class == "sql" else "ApiPlugin")
    assert await count(runtime, PluginMeta) == 1
    assert await count(runtime, model) == 1
    assert (
        await count(
            runtime, model, model.plugin_id == winner["id"], model.description == winner["spec"][field]["description"]
        )
        == 1
    )


@pytest.mark.parametrize("plugin_class", ["sql", "api"])
async def test_manifest_applies_of_one_name(
    client: httpx.AsyncClient, world: World, runtime: Runtime, plugin_class: str
) -> None:
    """Identical manifests applied at once: one creates, the others see it (update, nothing to change) or lose
    the insert race (409); never a 500, never two plugins."""
    field, data, model = KINDS[plugin_class]
    await connection(runtime, plugin_class, world["staff_a"].profile, "shared")
    manifest = {
        "apiVersion": "smarter.sh/v1",
        "kind": "SqlPlugin" if plugin_class == "sql" else "ApiPlugin",
        "metadata": {"name": "raced", "pluginClass": plugin_class, "description": "d", "version": "1.0.0"},
        "spec": {
            "selector": {"directive": "always"},
            "prompt": {"systemRole": "s"},
            "connection": "shared",
            field: data(),
        },
    }
    headers = world["staff_a"].headers
    responses = await race(
        runtime, [client.post("/api/v1/cli/apply/", json=manifest, headers=headers) for _ in range(RACERS)]
    )
    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {200, 409}, [(r.status_code, r.text[:200]) for r in responses]
    assert statuses.count(200) >= 1
    assert await count(runtime, PluginMeta) == 1
    assert await count(runtime, model) == 1
