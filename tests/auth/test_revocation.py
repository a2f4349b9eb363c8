"""Revocation takes effect on the very next request in this process, even with a warm cache.

Each test warms the key, changes the row through a unit of work (which derives the invalidations from the
rows it writes: `app.caching.rules`), and expects the next request to be refused.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from sqlalchemy import delete, select, update

from app.models import ApiKey, User, UserProfile
from app.models.base import utcnow
from app.runtime import Runtime
from app.services import keys
from tests.auth.helpers import (
    LIGHT_PROBE,
    PROBE,
    assert_problem_401,
    drain_listener,
    make_key,
    principal_cache,
    principal_for,
)
from tests.support import Actor, World, unit_of_work


async def warm(client: httpx.AsyncClient, runtime: Runtime, actor: Actor) -> None:
    await drain_listener(runtime)
    for path in (PROBE, LIGHT_PROBE):
        response = await client.get(path, headers=actor.headers)
        assert response.status_code == 200, response.text
    assert principal_cache(runtime).peek(keys.digest_of(actor.key)) is not None


async def test_deactivated_key_is_refused_on_the_next_request(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    actor = world["staff_a"]
    await warm(client, runtime, actor)
    async with unit_of_work(runtime) as session:
        await session.execute(
            update(ApiKey).where(ApiKey.id == actor.key_row.id).values(is_active=False).returning(ApiKey.digest)
        )
    assert_problem_401(await client.get(PROBE, headers=actor.headers), "Api key is not activated.")
    # Other credentials are untouched.
    assert (await client.get(PROBE, headers=world["staff_b"].headers)).status_code == 200
    # Reactivating works just as immediately.
    async with unit_of_work(runtime) as session:
        await session.execute(
            update(ApiKey).where(ApiKey.id == actor.key_row.id).values(is_active=True).returning(ApiKey.digest)
        )
    assert (await client.get(PROBE, headers=actor.headers)).status_code == 200


async def test_deleted_key_is_refused_on_the_next_request(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    for name in ("staff_b", "regular_b"):  # a named key and a login token
        actor = world[name]
        await warm(client, runtime, actor)
        async with unit_of_work(runtime) as session:
            await session.execute(delete(ApiKey).where(ApiKey.id == actor.key_row.id).returning(ApiKey.digest))
        assert_problem_401(await client.get(PROBE, headers=actor.headers), "Invalid token.")


async def test_inactive_user_is_refused_on_the_next_request(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    staff, regular = world["staff_a"], world["regular_a"]
    _, second_key = await make_key(runtime, staff.user, staff.profile, "second_key")
    second = Actor("second", staff.user, staff.profile, second_key, staff.key_row)
    for actor in (staff, second, regular):
        await warm(client, runtime, actor)
    async with unit_of_work(runtime) as session:
        await session.execute(update(User).where(User.id == staff.user.id).values(is_active=False).returning(User.id))
    # Every key of that user, at once; other users keep working from the cache.
    for actor in (staff, second):
        assert_problem_401(await client.get(PROBE, headers=actor.headers), "User inactive or deleted.")
    assert (await client.get(PROBE, headers=regular.headers)).status_code == 200


async def test_membership_change_is_seen_on_the_next_request(runtime: Runtime, world: World) -> None:
    """Principals are also tagged by account: dropping a profile re-reads the memberships."""
    actor = world["multi"]
    before = await principal_for(runtime, actor.key)
    assert len(before.memberships) == 2
    async with unit_of_work(runtime) as session:
        second = (
            await session.execute(
                select(UserProfile).where(
                    UserProfile.user_id == actor.user.id, UserProfile.account_id == world.account_b.id
                )
            )
        ).scalar_one()
        await session.execute(delete(UserProfile).where(UserProfile.id == second.id).returning(UserProfile.user_id))
    after = await principal_for(runtime, actor.key)
    assert [m.account_id for m in after.memberships] == [world.account_a.id]


async def test_expiry_is_checked_on_every_request_even_with_a_warm_cache(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    actor = world["staff_a"]
    expires_at = utcnow() + timedelta(seconds=0.6)
    _, key = await make_key(runtime, actor.user, actor.profile, "short_lived", expires_at=expires_at)
    headers = {"Authorization": f"Token {key}"}
    await drain_listener(runtime)
    assert (await client.get(PROBE, headers=headers)).status_code == 200
    cache = principal_cache(runtime)
    assert cache.peek(keys.digest_of(key)) is not None
    loads = cache.loads
    await asyncio.sleep(max(0.0, (expires_at - utcnow()).total_seconds()) + 0.05)
    assert_problem_401(await client.get(PROBE, headers=headers), "Invalid token.")
    assert (await client.get(LIGHT_PROBE, headers=headers)).status_code == 401
    # Refused from the cached snapshot: no reload was needed to notice the expiry.
    assert cache.loads == loads
    assert cache.peek(keys.digest_of(key)) is not None
