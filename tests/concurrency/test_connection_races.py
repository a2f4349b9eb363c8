"""Concurrent identical creates of connections (REST and manifests): one success, every other racer a 409,
one row; on SQLite and PostgreSQL (the unique constraint per account and kind decides)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.models import ApiConnection, SqlConnection
from app.runtime import Runtime
from tests.concurrency.test_races import RACERS, assert_one_winner, count, race
from tests.support import World

BODIES: dict[str, dict[str, Any]] = {
    "sql": {"dbEngine": "postgresql", "hostname": "db.example.com", "database": "sales"},
    "api": {"baseUrl": "https://api.example.com/"},
}
MODELS = {"sql": SqlConnection, "api": ApiConnection}


@pytest.mark.parametrize("kind", ["sql", "api"])
async def test_connections_of_one_name(client: httpx.AsyncClient, world: World, runtime: Runtime, kind: str) -> None:
    headers = world["regular_a"].headers  # any member may create connections
    url = f"/api/v1/connections/{kind}/"
    responses = await race(
        runtime,
        [
            client.post(
                url, json={"name": "Race Connection", "description": f"racer {n}", **BODIES[kind]}, headers=headers
            )
            for n in range(RACERS)
        ],
    )
    winner = assert_one_winner(responses, 201, "name").json()
    assert winner["name"] == "race_connection"
    assert await count(runtime, MODELS[kind]) == 1
    listed = (await client.get(url, headers=headers)).json()
    assert [(row["name"], row["description"]) for row in listed] == [("race_connection", winner["description"])]
