"""`lastUsedAt`: written at most once a minute per key, by a targeted UPDATE that touches nothing else."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
from sqlalchemy import select, update

from app.models import ApiKey
from app.models.base import utcnow
from app.runtime import Runtime
from app.services.principals import LastUsedRecorder
from tests.auth.helpers import PROBE, capture_statements, make_key
from tests.support import World, unit_of_work


async def key_row(runtime: Runtime, key_id: int) -> ApiKey:
    async with runtime.sessionmaker() as session:
        return (await session.execute(select(ApiKey).where(ApiKey.id == key_id))).scalar_one()


async def test_two_requests_write_last_used_once_and_keep_updated_at(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    actor = world["staff_a"]
    row, key = await make_key(runtime, actor.user, actor.profile, "usage_key")
    assert row.last_used_at is None
    headers = {"Authorization": f"Token {key}"}
    with capture_statements(runtime) as statements:
        for _ in range(2):
            assert (await client.get(PROBE, headers=headers)).status_code == 200
    [statement] = statements.api_key_updates
    # Targeted: it sets last_used_at (and keeps updated_at), filtered by id and the interval.
    assert statement.startswith("update api_key set last_used_at=")
    assert "is_active" not in statement
    assert "where api_key.id =" in statement
    after = await key_row(runtime, row.id)
    assert after.last_used_at is not None
    assert abs((utcnow() - after.last_used_at).total_seconds()) < 10
    assert after.updated_at == row.updated_at
    assert after.is_active


async def test_the_interval_holds_across_processes(runtime: Runtime, world: World) -> None:
    """A recorder with an empty memory (another worker) still writes at most once per interval."""
    key_id = world["staff_b"].key_row.id
    recent = utcnow() - timedelta(seconds=30)
    async with unit_of_work(runtime) as session:
        await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=recent))
    await LastUsedRecorder(runtime.engine, 60).record(key_id)
    assert (await key_row(runtime, key_id)).last_used_at == recent

    old = utcnow() - timedelta(seconds=61)
    async with unit_of_work(runtime) as session:
        await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=old))
    await LastUsedRecorder(runtime.engine, 60).record(key_id)
    written = (await key_row(runtime, key_id)).last_used_at
    assert isinstance(written, datetime)
    assert written > old + timedelta(seconds=30)


async def test_a_concurrent_deactivation_is_never_undone(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    actor = world["staff_a"]
    assert (await client.get(PROBE, headers=actor.headers)).status_code == 200
    first_use = (await key_row(runtime, actor.key_row.id)).last_used_at
    assert first_use is not None
    # Another process deactivates the key; this one, which authenticated the key just before, then
    # records its use (interval 0 forces the write). A full-row save would put is_active back.
    async with unit_of_work(runtime) as session:
        await session.execute(update(ApiKey).where(ApiKey.id == actor.key_row.id).values(is_active=False))
    with capture_statements(runtime) as statements:
        await LastUsedRecorder(runtime.engine, 0).record(actor.key_row.id)
    assert len(statements.api_key_updates) == 1
    row = await key_row(runtime, actor.key_row.id)
    assert row.is_active is False
    assert row.last_used_at is not None
    assert row.last_used_at > first_use
