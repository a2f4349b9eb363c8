"""Concurrent identical secret creates, through the real app, decided by the database's unique key
(`(account_id, name)`): one 201, every other racer a 409 naming `name`, one row holding the winner's value
(SQLite and PostgreSQL). The helpers and the rules of a race are tests/concurrency/test_races.py's."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from app.models import Secret
from app.models.base import utcnow
from app.runtime import Runtime
from app.services.secrets import reveal
from tests.concurrency.test_races import RACERS, assert_one_winner, count, race
from tests.support import World, unit_of_work

SECRETS = "/api/v1/secrets/"


async def test_secrets_of_one_name(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    headers = world["staff_a"].headers
    bodies = [
        {"name": "Race Secret", "value": f"value-of-racer-{n}", "description": f"racer {n}"} for n in range(RACERS)
    ]
    responses = await race(runtime, [client.post(SECRETS, json=body, headers=headers) for body in bodies])
    winner = assert_one_winner(responses, 201, "name").json()
    assert winner["name"] == "race_secret"
    n = int(winner["description"].removeprefix("racer "))
    assert await count(runtime, Secret) == 1
    async with unit_of_work(runtime) as session:
        secret_id = (await session.execute(select(Secret.id))).scalar_one()
        assert secret_id == winner["id"]
        assert await reveal(session, runtime.cipher, secret_id, now=utcnow()) == f"value-of-racer-{n}"
