"""`/api/v1/accounts/user-profiles/`: scopes by role, superuser-only creation, metadata edits, immutability,
removal (never the last profile), and memberships taking effect on the user's very next request."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from smarter.models.account import UserProfile as SDKUserProfile
from sqlalchemy import func, select

from app import db
from app.errors import Conflict
from app.identifiers import hashed_id
from app.models import ApiKey, PluginMeta, UserProfile
from app.runtime import Runtime
from app.services import profiles
from tests.support import World, statements

BASE = "/api/v1/accounts/user-profiles/"
CONTACTS = "/api/v1/accounts/contacts/"
# Profiles by (username, tenant).
ALL = {
    ("admin", "p"),
    ("staff_a", "a"),
    ("regular_a", "a"),
    ("staff_b", "b"),
    ("regular_b", "b"),
    ("multi", "a"),
    ("multi", "b"),
}
VISIBLE = {
    "superuser": ALL,
    "staff_a": {p for p in ALL if p[1] == "a"},
    "staff_b": {p for p in ALL if p[1] == "b"},
    "regular_a": {("regular_a", "a")},
    "multi": {("multi", "a"), ("multi", "b")},
}


def tenant_of(world: World, account_number: str) -> str:
    return {
        world.platform.account_number: "p",
        world.account_a.account_number: "a",
        world.account_b.account_number: "b",
    }[account_number]


async def profile_ids(runtime: Runtime, world: World) -> dict[tuple[str, str], int]:
    async with runtime.sessionmaker() as session:
        rows = (await session.execute(select(UserProfile.id, UserProfile.user_id, UserProfile.account_id))).all()
    users = {a.user.id: (a.user.username) for a in world.actors.values()}
    tenants = {world.platform.id: "p", world.account_a.id: "a", world.account_b.id: "b"}
    return {(users[user_id], tenants[account_id]): id_ for id_, user_id, account_id in rows}


async def count(runtime: Runtime, model: type[Any], *where: Any) -> int:
    async with runtime.sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(model).where(*where))).scalar_one())


# --- reads ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("actor", sorted(VISIBLE))
async def test_list_by_role(client: httpx.AsyncClient, world: World, actor: str) -> None:
    response = await client.get(BASE, headers=world[actor].headers)
    assert response.status_code == 200, response.text
    rows = response.json()
    seen = {(row["user"]["username"], tenant_of(world, row["account"]["accountNumber"])) for row in rows}
    assert seen == VISIBLE[actor]
    assert [row["id"] for row in rows] == sorted((row["id"] for row in rows), reverse=True)
    for row in rows:
        SDKUserProfile.model_validate(row)
        assert row["recordLocator"] == f"userprofile-{hashed_id(row['id'])}"
        assert set(row["user"]) >= {"id", "username", "firstName", "lastName", "email", "isStaff", "isSuperuser"}
        assert "password" not in row["user"]
        assert row["isTest"] is False
        assert row["profileImageUrl"] is None


@pytest.mark.parametrize("actor", sorted(VISIBLE))
async def test_get_by_role_is_404_outside_scope(
    client: httpx.AsyncClient, world: World, runtime: Runtime, actor: str
) -> None:
    for key, profile_id in (await profile_ids(runtime, world)).items():
        response = await client.get(f"{BASE}{hashed_id(profile_id)}/", headers=world[actor].headers)
        assert response.status_code == (200 if key in VISIBLE[actor] else 404), key
        if response.status_code == 200:
            assert response.json()["user"]["username"] == key[0]


async def test_list_filters_and_statement_budget(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    headers = world["superuser"].headers
    by_user = await client.get(BASE, params={"username": "multi"}, headers=headers)
    assert {tenant_of(world, r["account"]["accountNumber"]) for r in by_user.json()} == {"a", "b"}
    in_b = await client.get(BASE, params={"accountNumber": world.account_b.account_number}, headers=headers)
    assert {r["user"]["username"] for r in in_b.json()} == {"staff_b", "regular_b", "multi"}
    by_name = await client.get(BASE, params={"name": "Staff A"}, headers=headers)  # normalised to staff_a
    assert [r["user"]["username"] for r in by_name.json()] == ["staff_a"]
    assert (await client.get(BASE, params={"name": "\t"}, headers=headers)).status_code == 422

    await client.get(BASE, headers=headers)  # warm the principal cache
    counts = []
    for limit in (1, 7):
        with statements(runtime) as seen:
            response = await client.get(BASE, params={"limit": limit}, headers=headers)
        assert len(response.json()) == limit
        counts.append(len(seen))
    # The page (user and account joined in), then its tags: no query per row.
    assert counts == [2, 2]


# --- create ---------------------------------------------------------------------------------------------------


async def test_superuser_adds_a_user_to_another_account(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    member = world["regular_b"]
    before = await client.get(CONTACTS, headers=member.headers)
    assert {r["account"]["accountNumber"] for r in before.json()} == {world.account_b.account_number}

    response = await client.post(
        BASE,
        json={
            "username": "regular_b",
            "accountNumber": world.account_a.account_number,
            "tags": ["guest"],
            "description": "Visiting A",
            "isTest": True,
        },
        headers=world["superuser"].headers,
    )
    assert response.status_code == 201, response.text
    row = response.json()
    assert row["user"]["username"] == "regular_b"
    assert row["account"]["accountNumber"] == world.account_a.account_number
    assert (row["name"], row["tags"], row["description"], row["isTest"]) == ("regular_b", ["guest"], "Visiting A", True)
    # Their memberships changed: the next request already sees A's contacts (their own included).
    after = await client.get(CONTACTS, headers=member.headers)
    in_a = [r for r in after.json() if r["account"]["accountNumber"] == world.account_a.account_number]
    assert "regular_b@example.com" in {r["email"] for r in in_a}

    again = await client.post(
        BASE,
        json={"username": "regular_b", "accountNumber": world.account_a.account_number},
        headers=world["superuser"].headers,
    )
    assert again.status_code == 409
    assert again.json()["detail"] == "This user already has a profile in this account."


@pytest.mark.parametrize("actor", ["staff_a", "regular_a", "multi"])
async def test_only_superusers_add_profiles(
    client: httpx.AsyncClient, world: World, runtime: Runtime, actor: str
) -> None:
    body = {"username": "regular_b", "accountNumber": world.account_a.account_number}
    response = await client.post(BASE, json=body, headers=world[actor].headers)
    assert response.status_code == 403
    assert await count(runtime, UserProfile, UserProfile.user_id == world["regular_b"].user.id) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "nobody", "accountNumber": "3141-5926-5359"}, "username"),
        ({"username": "regular_b", "accountNumber": "0000-0000-0001"}, "accountNumber"),
        ({"username": "regular_b", "accountNumber": "31415926535"}, "accountNumber"),
        ({"username": "regular_b"}, "accountNumber"),
        ({"username": "regular_b", "accountNumber": "3141-5926-5359", "user": {"id": 1}}, "user"),
    ],
)
async def test_create_rejects_bad_bodies(
    client: httpx.AsyncClient, world: World, body: dict[str, Any], field: str
) -> None:
    response = await client.post(BASE, json=body, headers=world["superuser"].headers)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"][-1] == field


# --- update ---------------------------------------------------------------------------------------------------


async def test_users_staff_and_superusers_edit_a_profile(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    ids = await profile_ids(runtime, world)
    target = ids[("regular_a", "a")]
    body = {
        "description": "Me",
        "tags": ["b", "a"],
        "annotations": [{"smarter.sh/team": "core"}],
        "profileImageUrl": "https://example.com/me.png",
        "isTest": True,
        "version": "1.2.3",
    }
    own = await client.patch(f"{BASE}{target}/", json=body, headers=world["regular_a"].headers)
    assert own.status_code == 200, own.text
    row = own.json()
    assert (row["description"], row["tags"], row["profileImageUrl"], row["isTest"], row["version"]) == (
        "Me",
        ["a", "b"],
        "https://example.com/me.png",
        True,
        "1.2.3",
    )
    assert row["annotations"] == [{"smarter.sh/team": "core"}]
    staff = await client.patch(f"{BASE}{target}/", json={"profileImageUrl": None}, headers=world["staff_a"].headers)
    assert staff.status_code == 200
    assert staff.json()["profileImageUrl"] is None
    assert staff.json()["tags"] == ["a", "b"]  # untouched
    root = await client.patch(f"{BASE}{target}/", json={"name": "Reggie A"}, headers=world["superuser"].headers)
    assert root.status_code == 200
    assert root.json()["name"] == "reggie_a"


async def test_update_outside_scope_is_404(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    ids = await profile_ids(runtime, world)
    for actor, key in (("staff_b", ("regular_a", "a")), ("regular_a", ("multi", "a")), ("multi", ("staff_b", "b"))):
        response = await client.patch(f"{BASE}{ids[key]}/", json={"isTest": True}, headers=world[actor].headers)
        assert response.status_code == 404, (actor, key)


@pytest.mark.parametrize(
    "body",
    [
        {"user": {"username": "staff_a"}},
        {"account": {"accountNumber": "3141-5926-5359"}},
        {"accountNumber": "3141-5926-5359"},
        {"userId": 1},
        {"profileImageUrl": "javascript:alert(1)"},
        {"profileImageUrl": "https://x/" + "a" * 200},
        {"isTest": None},
        {"name": "\n"},
        {"version": "1.0"},
    ],
)
async def test_update_rejects_immutable_and_invalid_fields(
    client: httpx.AsyncClient, world: World, runtime: Runtime, body: dict[str, Any]
) -> None:
    ids = await profile_ids(runtime, world)
    target = ids[("regular_a", "a")]
    response = await client.patch(f"{BASE}{target}/", json=body, headers=world["superuser"].headers)
    assert response.status_code == 422, response.text
    async with runtime.sessionmaker() as session:
        profile = await session.get(UserProfile, target)
        assert profile is not None
        assert (profile.user_id, profile.account_id, profile.is_test) == (
            world["regular_a"].user.id,
            world.account_a.id,
            False,
        )


# --- delete ---------------------------------------------------------------------------------------------------


async def test_staff_remove_a_member_who_has_another_profile(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    ids = await profile_ids(runtime, world)
    member = world["multi"]
    plugin = await client.post("/api/v1/plugins/", json={"name": "multi_in_a"}, headers=member.headers)
    assert plugin.status_code == 201
    assert (await client.get(CONTACTS, headers=member.headers)).status_code == 200  # principal cached

    response = await client.delete(f"{BASE}{ids[('multi', 'a')]}/", headers=world["staff_a"].headers)
    assert response.status_code == 204
    assert await count(runtime, UserProfile, UserProfile.user_id == member.user.id) == 1
    # What the profile owned goes with it; the user's login token stays, detached from the profile.
    assert await count(runtime, PluginMeta, PluginMeta.name == "multi_in_a") == 0
    async with runtime.sessionmaker() as session:
        token = await session.get(ApiKey, member.key_row.id)
        assert token is not None
        assert token.user_profile_id is None
    # Memberships are re-read on the very next request: A's contacts are no longer visible.
    contacts = await client.get(CONTACTS, headers=member.headers)
    assert contacts.status_code == 200
    assert {r["account"]["accountNumber"] for r in contacts.json()} == {world.account_b.account_number}


async def test_delete_refusals(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    ids = await profile_ids(runtime, world)
    # A user's own profile is not theirs to remove; another tenant's is invisible.
    assert (await client.delete(f"{BASE}{ids[('multi', 'a')]}/", headers=world["multi"].headers)).status_code == 403
    assert (
        await client.delete(f"{BASE}{ids[('regular_a', 'a')]}/", headers=world["staff_b"].headers)
    ).status_code == 404
    # Never the last profile, not even for a superuser.
    for actor in ("staff_a", "superuser"):
        response = await client.delete(f"{BASE}{ids[('regular_a', 'a')]}/", headers=world[actor].headers)
        assert response.status_code == 409
        assert response.json()["detail"] == "This is the user's only profile; delete the user instead."
    assert await count(runtime, UserProfile) == len(ALL)
    # A superuser removes a profile anywhere.
    assert (await client.delete(f"{BASE}{ids[('multi', 'b')]}/", headers=world["superuser"].headers)).status_code == 204
    assert await count(runtime, UserProfile) == len(ALL) - 1


async def test_removing_a_staff_profile_revokes_its_keys_at_once(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    staff = world["staff_b"]
    await client.post(
        BASE,
        json={"username": "staff_b", "accountNumber": world.account_a.account_number},
        headers=world["superuser"].headers,
    )
    assert (await client.get(BASE, headers=staff.headers)).status_code == 200
    ids = await profile_ids(runtime, world)
    # The named key is owned by staff_b's profile in B: removing that profile removes the key.
    response = await client.delete(f"{BASE}{ids[('staff_b', 'b')]}/", headers=world["superuser"].headers)
    assert response.status_code == 204
    assert (await client.get(BASE, headers=staff.headers)).status_code == 401


async def test_concurrent_adds_of_one_membership_give_one_201(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    body = {"username": "regular_b", "accountNumber": world.account_a.account_number}
    responses = await asyncio.gather(
        *(client.post(BASE, json=body, headers=world["superuser"].headers) for _ in range(10))
    )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 9
    assert await count(runtime, UserProfile, UserProfile.user_id == world["regular_b"].user.id) == 2


async def test_concurrent_removals_never_leave_a_user_without_profiles(world: World, runtime: Runtime) -> None:
    ids = await profile_ids(runtime, world)
    async with runtime.writer_sessionmaker() as first, runtime.writer_sessionmaker() as second:
        await profiles.remove_profile(first, await first.get_one(UserProfile, ids[("multi", "a")]))

        async def remove_the_other() -> None:
            await profiles.remove_profile(second, await second.get_one(UserProfile, ids[("multi", "b")]))

        racer = asyncio.create_task(remove_the_other())
        await asyncio.sleep(0.3)
        assert not racer.done()  # waits for the first removal's lock on the user
        await db.commit(first)
        with pytest.raises(Conflict):
            await racer
        await second.rollback()
    assert await count(runtime, UserProfile, UserProfile.user_id == world["multi"].user.id) == 1
