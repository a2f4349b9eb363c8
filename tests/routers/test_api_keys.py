"""`/api/v1/api-keys/`: every route x role, the ownership scope, who may own keys, and authentication
following every change (deactivate, delete, expiry) on the very next request.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.identifiers import hashed_id
from app.main import create_app
from app.models import Account, ApiKey, Base, User, UserProfile
from app.models.base import utcnow
from app.runtime import Runtime
from app.services import keys, profiles, users
from app.services.api_keys import STAFF_ONLY, SUPERUSER_KEYS
from tests import support
from tests.auth.helpers import assert_problem_401, capture_statements
from tests.support import World, unit_of_work

BASE = "/api/v1/api-keys/"
ACTORS = ("superuser", "staff_a", "regular_a", "staff_b", "regular_b", "multi")
STAFF = ("superuser", "staff_a", "staff_b")
NON_STAFF = ("regular_a", "regular_b", "multi")
# The named keys the world starts with, and who sees them (ownership scope).
SEEDED = {"superuser": "admin_bootstrap_key", "staff_a": "staff_a_key", "staff_b": "staff_b_key"}
SEES = {
    "superuser": {"admin_bootstrap_key", "staff_a_key", "staff_b_key"},
    "staff_a": {"staff_a_key"},
    "staff_b": {"staff_b_key"},
    "regular_a": set(),
    "regular_b": set(),
    "multi": set(),
}
HEX64 = re.compile(r"[0-9a-f]{64}")
READ_FIELDS = {
    "id",
    "hashedId",
    "recordLocator",
    "keyId",
    "name",
    "description",
    "version",
    "tags",
    "annotations",
    "createdAt",
    "updatedAt",
    "isActive",
    "lastUsedAt",
    "expiresAt",
    "identifier",
    "user",
    "userProfile",
}


def token(key: str) -> dict[str, str]:
    return support.auth(key)


async def create(
    client: httpx.AsyncClient, world: World, actor: str, name: str = "new_key", **body: Any
) -> dict[str, Any]:
    response = await client.post(BASE, json={"name": name, **body}, headers=world[actor].headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def authenticates(client: httpx.AsyncClient, key: str) -> int:
    """The status of an authenticated request made with `key` (200, or 401 when refused)."""
    return (await client.get(BASE, headers=token(key))).status_code


async def row(runtime: Runtime, key_id: int) -> ApiKey | None:
    async with runtime.sessionmaker() as session:
        return await session.get(ApiKey, key_id)


async def key_count(runtime: Runtime) -> int:
    async with runtime.sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(ApiKey))).scalar_one())


async def add_user(runtime: Runtime, username: str, account: Account, *, is_staff: bool = True) -> UserProfile:
    async with unit_of_work(runtime) as session:
        user = await users.create_user(session, username=username, email=f"{username}@example.com", is_staff=is_staff)
        return await profiles.add_profile(session, user, account)


async def add_admin_to(runtime: Runtime, world: World, account: Account) -> UserProfile:
    async with unit_of_work(runtime) as session:
        admin = await session.get(User, world["superuser"].user.id)
        assert admin is not None
        return await profiles.add_profile(session, admin, account)


def iso(moment: datetime) -> str:
    return moment.isoformat()


# --- create --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("actor", ACTORS)
async def test_create_by_role(client: httpx.AsyncClient, world: World, runtime: Runtime, actor: str) -> None:
    body = {"name": "CI Key", "description": "for CI", "tags": ["ci"], "annotations": [{"team": "ops"}]}
    response = await client.post(BASE, json=body, headers=world[actor].headers)
    if actor in NON_STAFF:
        assert response.status_code == 403, response.text
        assert response.json()["detail"] == "Only staff can create API keys."
        assert await key_count(runtime) == 6  # the world's 3 keys and 3 login tokens
        return
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == READ_FIELDS | {"key"}
    key = created["key"]
    assert HEX64.fullmatch(key)
    digest = keys.digest_of(key)
    assert created["identifier"] == "****" + digest[-4:]
    assert created["name"] == "ci_key"
    assert (created["description"], created["tags"], created["annotations"]) == ("for CI", ["ci"], [{"team": "ops"}])
    assert created["hashedId"] == hashed_id(created["id"])
    assert created["recordLocator"] == f"smarterauthtoken-{created['hashedId']}"
    assert uuid.UUID(created["keyId"])
    assert (created["isActive"], created["lastUsedAt"], created["expiresAt"]) == (True, None, None)
    me = world[actor]
    assert created["user"] == {"id": me.user.id, "username": me.user.username}
    account = world.platform if actor == "superuser" else world.account_a if actor == "staff_a" else world.account_b
    assert created["userProfile"] == {
        "id": me.profile.id,
        "user": {"username": me.user.username, "email": me.user.email},
        "account": {"accountNumber": account.account_number},
    }
    stored = await row(runtime, created["id"])
    assert stored is not None
    assert (stored.digest, stored.token_key, stored.kind) == (digest, key[:15], "api_key")
    assert (stored.user_profile_id, stored.account_id) == (me.profile.id, account.id)
    # The new key authenticates at once, as its user.
    listed = await client.get(BASE, headers=token(key))
    assert listed.status_code == 200
    assert "ci_key" in {item["name"] for item in listed.json()}


async def test_plaintext_appears_only_in_the_create_response(client: httpx.AsyncClient, world: World) -> None:
    created = await create(client, world, "staff_a")
    key, digest = created["key"], keys.digest_of(created["key"])
    secrets = (key, key[:15], digest)
    headers = world["staff_a"].headers
    responses = [
        await client.get(BASE, headers=headers),
        await client.get(f"{BASE}{created['id']}/", headers=headers),
        await client.patch(f"{BASE}{created['id']}/", json={"description": "x"}, headers=headers),
        await client.post(f"{BASE}{created['id']}/deactivate/", headers=headers),
        await client.post(f"{BASE}{created['id']}/toggle-active/", headers=headers),
        await client.get(BASE, headers=world["superuser"].headers),
    ]
    for response in responses:
        assert response.status_code == 200, response.text
        assert not any(secret in response.text for secret in secrets)
        items = response.json() if isinstance(response.json(), list) else [response.json()]
        assert all(set(item) == READ_FIELDS for item in items)


async def test_create_for_other_users(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    staff_a2 = await add_user(runtime, "staff_a2", world.account_a)
    headers = world["staff_a"].headers

    created = await create(client, world, "staff_a", username="staff_a2")
    assert created["user"]["username"] == "staff_a2"
    assert created["userProfile"]["id"] == staff_a2.id
    assert await authenticates(client, created["key"]) == 200

    # A non-staff user of the same account: 422 with the original's sentence.
    response = await client.post(BASE, json={"name": "k", "username": "regular_a"}, headers=headers)
    assert response.status_code == 422
    assert response.json()["detail"] == STAFF_ONLY
    assert response.json()["errors"][0]["loc"] == ["body", "username"]
    # Another tenant's user, an unknown user, and the superuser (not a member of A): invisible, 404.
    for username in ("staff_b", "nobody", "admin"):
        response = await client.post(BASE, json={"name": "k", "username": username}, headers=headers)
        assert response.status_code == 404, (username, response.text)
    # A superuser who is a member of A is visible, but staff may not mint keys for them: 403.
    await add_admin_to(runtime, world, world.account_a)
    response = await client.post(BASE, json={"name": "k", "username": "admin"}, headers=headers)
    assert response.status_code == 403
    assert response.json()["detail"] == SUPERUSER_KEYS
    # Staff cannot name an account they do not belong to.
    body = {"name": "k", "accountNumber": world.account_b.account_number}
    assert (await client.post(BASE, json=body, headers=headers)).status_code == 422
    assert await key_count(runtime) == 7  # the world's 6 and staff_a2's key


async def test_superuser_creates_for_any_staff_user(client: httpx.AsyncClient, world: World) -> None:
    headers = world["superuser"].headers
    a_number, b_number = world.account_a.account_number, world.account_b.account_number
    created = await create(client, world, "superuser", username="staff_b", accountNumber=b_number)
    assert created["userProfile"]["id"] == world["staff_b"].profile.id
    assert created["userProfile"]["account"] == {"accountNumber": b_number}
    assert await authenticates(client, created["key"]) == 200
    # staff_b has no profile in the platform account (the superuser's acting account): their only profile owns it.
    only = await create(client, world, "superuser", name="k2", username="staff_b")
    assert only["userProfile"]["account"] == {"accountNumber": b_number}
    # A named account is taken as named.
    body = {"name": "k2", "username": "staff_b", "accountNumber": a_number}
    response = await client.post(BASE, json=body, headers=headers)
    assert response.status_code == 422, response.text
    assert "has no profile in account" in response.json()["detail"]
    response = await client.post(
        BASE, json={"name": "k3", "username": "regular_b", "accountNumber": b_number}, headers=headers
    )
    assert response.status_code == 422
    assert response.json()["detail"] == STAFF_ONLY
    response = await client.post(BASE, json={"name": "k4", "username": "nobody"}, headers=headers)
    assert response.status_code == 404


async def test_expires_at(client: httpx.AsyncClient, world: World) -> None:
    headers = world["staff_a"].headers
    past = iso(utcnow() - timedelta(minutes=1))
    response = await client.post(BASE, json={"name": "k", "expiresAt": past}, headers=headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "expiresAt"]
    naive = (datetime.now(UTC) + timedelta(days=1)).replace(tzinfo=None).isoformat()
    response = await client.post(BASE, json={"name": "k", "expiresAt": naive}, headers=headers)
    assert response.status_code == 422
    future = datetime(2099, 1, 2, 3, 4, 5, tzinfo=UTC)
    created = await create(client, world, "staff_a", expiresAt=iso(future))
    assert datetime.fromisoformat(created["expiresAt"]) == future
    assert await authenticates(client, created["key"]) == 200


async def test_names_are_normalised_and_unique_per_owner(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    assert (await create(client, world, "staff_a", name="New API Key"))["name"] == "new_api_key"
    response = await client.post(BASE, json={"name": "new-api-key"}, headers=world["staff_a"].headers)
    assert response.status_code == 409
    assert response.json()["errors"][0]["loc"] == ["body", "name"]
    # Another owner may use the name, also in the same account.
    await add_user(runtime, "staff_a2", world.account_a)
    assert (await create(client, world, "staff_a", name="newApiKey", username="staff_a2"))["name"] == "new_api_key"
    assert (await create(client, world, "staff_b", name="new_api_key"))["name"] == "new_api_key"
    for bad in ("bad\nname", "!!!", "x" * 51):
        response = await client.post(BASE, json={"name": bad}, headers=world["staff_a"].headers)
        assert response.status_code == 422, bad


async def test_concurrent_creates_of_one_name(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    responses = await asyncio.gather(
        *(client.post(BASE, json={"name": "race"}, headers=world["staff_a"].headers) for _ in range(8))
    )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 7
    async with runtime.sessionmaker() as session:
        assert (await session.execute(select(func.count()).where(ApiKey.name == "race"))).scalar_one() == 1


@pytest.mark.parametrize("field", ["key", "digest", "tokenKey", "kind", "userId", "identifier", "bogus"])
async def test_create_refuses_unknown_and_read_only_fields(client: httpx.AsyncClient, world: World, field: str) -> None:
    response = await client.post(BASE, json={"name": "k", field: "x"}, headers=world["staff_a"].headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", field]


async def test_unparseable_body(client: httpx.AsyncClient, world: World) -> None:
    headers = {**world["staff_a"].headers, "content-type": "application/json"}
    assert (await client.post(BASE, content=b"{not json", headers=headers)).status_code == 400


async def test_unauthenticated(client: httpx.AsyncClient, world: World) -> None:
    assert_problem_401(await client.get(BASE))
    assert_problem_401(await client.post(BASE, json={"name": "k"}))
    assert_problem_401(await client.post(f"{BASE}1/deactivate/"))


# --- reads ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("actor", ACTORS)
async def test_list_uses_the_ownership_scope(client: httpx.AsyncClient, world: World, actor: str) -> None:
    response = await client.get(BASE, headers=world[actor].headers)
    assert response.status_code == 200
    names = [item["name"] for item in response.json()]
    # Login tokens (regular users', multi's) are never listed, not even to a superuser.
    assert set(names) == SEES[actor]
    ids = [item["id"] for item in response.json()]
    assert ids == sorted(ids, reverse=True)


async def test_list_follows_new_keys_per_account(client: httpx.AsyncClient, world: World) -> None:
    await create(client, world, "staff_a", name="a_key")
    await create(client, world, "staff_b", name="b_key")
    seen = {
        actor: {item["name"] for item in (await client.get(BASE, headers=world[actor].headers)).json()}
        for actor in ACTORS
    }
    assert seen["superuser"] == SEES["superuser"] | {"a_key", "b_key"}
    assert seen["staff_a"] == {"staff_a_key", "a_key"}
    assert seen["staff_b"] == {"staff_b_key", "b_key"}
    assert seen["regular_a"] == seen["regular_b"] == seen["multi"] == set()


async def test_filters_and_pagination(client: httpx.AsyncClient, world: World) -> None:
    headers = world["staff_a"].headers
    await create(client, world, "staff_a", name="one", tags=["red"])
    await create(client, world, "staff_a", name="two", tags=["red", "blue"], isActive=False)
    await create(client, world, "staff_a", name="three")

    async def names(**params: Any) -> list[str]:
        response = await client.get(BASE, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [item["name"] for item in response.json()]

    assert await names() == ["three", "two", "one", "staff_a_key"]
    assert await names(name="Two") == ["two"]
    assert await names(isActive="false") == ["two"]
    assert await names(isActive="true") == ["three", "one", "staff_a_key"]
    assert await names(tag="red") == ["two", "one"]
    assert await names(tag="blue", isActive="false") == ["two"]
    first = await client.get(BASE, params={"limit": 3}, headers=headers)
    assert [item["name"] for item in first.json()] == ["three", "two", "one"]
    match = re.fullmatch(r'<(.+)>; rel="next"', first.headers["link"])
    assert match is not None
    second = await client.get(match.group(1), headers=headers)
    assert [item["name"] for item in second.json()] == ["staff_a_key"]
    assert "link" not in second.headers
    for bad in ({"limit": 0}, {"limit": 1001}, {"isActive": "maybe"}, {"name": "!!!"}):
        assert (await client.get(BASE, params=bad, headers=headers)).status_code == 422, bad


async def test_list_rows_equal_the_detail(client: httpx.AsyncClient, world: World) -> None:
    created = await create(
        client, world, "staff_a", tags=["b", "a"], annotations=[{"k": 1}], expiresAt="2099-01-01T00:00:00Z"
    )
    await client.get(BASE, headers=token(created["key"]))  # sets lastUsedAt
    headers = world["staff_a"].headers
    detail = (await client.get(f"{BASE}{created['id']}/", headers=headers)).json()
    assert detail["lastUsedAt"] is not None
    listed = {item["id"]: item for item in (await client.get(BASE, headers=headers)).json()}
    assert listed[created["id"]] == detail
    assert detail["identifier"] == created["identifier"] == "****" + keys.digest_of(created["key"])[-4:]
    assert (
        listed[world["staff_a"].key_row.id]
        == (await client.get(f"{BASE}{world['staff_a'].key_row.id}/", headers=headers)).json()
    )


async def test_get_by_every_identifier(client: httpx.AsyncClient, world: World) -> None:
    created = await create(client, world, "staff_a")
    for ref in (str(created["id"]), created["hashedId"], created["keyId"], created["keyId"].replace("-", "")):
        for path in (f"{BASE}{ref}/", f"{BASE}{ref}"):
            response = await client.get(path, headers=world["staff_a"].headers)
            assert response.status_code == 200, (path, response.text)
            assert response.json()["id"] == created["id"]
            assert set(response.json()) == READ_FIELDS
    for ref in ("0", "-1", "abc", "rMHx", str(uuid.uuid4()), "9" * 40):
        assert (await client.get(f"{BASE}{ref}/", headers=world["superuser"].headers)).status_code == 404, ref


@pytest.mark.parametrize("actor", ACTORS)
async def test_get_uses_the_ownership_scope(client: httpx.AsyncClient, world: World, actor: str) -> None:
    for owner, name in SEEDED.items():
        key_row = world[owner].key_row
        for ref in (str(key_row.id), hashed_id(key_row.id), str(key_row.key_id)):
            response = await client.get(f"{BASE}{ref}/", headers=world[actor].headers)
            expected = 200 if name in SEES[actor] else 404
            assert response.status_code == expected, (actor, owner, ref)
    # Login tokens are not addressable here, whoever asks.
    for holder in NON_STAFF:
        response = await client.get(f"{BASE}{world[holder].key_row.id}/", headers=world["superuser"].headers)
        assert response.status_code == 404


# --- writes: the role matrix ---------------------------------------------------------------------------------

WRITES: list[tuple[str, str, dict[str, Any] | None, int]] = [
    ("PATCH", "", {"description": "changed"}, 200),
    ("POST", "activate/", None, 200),
    ("POST", "deactivate/", None, 200),
    ("POST", "toggle-active/", None, 200),
    ("DELETE", "", None, 204),
]


@pytest.mark.parametrize(("method", "suffix", "body", "ok"), WRITES)
@pytest.mark.parametrize("actor", ACTORS)
async def test_write_routes_by_role(
    client: httpx.AsyncClient,
    world: World,
    runtime: Runtime,
    actor: str,
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
    ok: int,
) -> None:
    target = await create(client, world, "staff_a", name="target")
    response = await client.request(
        method, f"{BASE}{target['hashedId']}/{suffix}", json=body, headers=world[actor].headers
    )
    expected = ok if actor in ("superuser", "staff_a") else 404
    assert response.status_code == expected, (actor, method, suffix, response.text)
    stored = await row(runtime, target["id"])
    if expected == 404:
        assert stored is not None
        assert (stored.description, stored.is_active) == ("", True)
    elif method == "DELETE":
        assert stored is None
    else:
        assert stored is not None
        assert response.json()["id"] == target["id"]
        assert response.json()["isActive"] == stored.is_active


@pytest.mark.parametrize(("method", "suffix", "body", "ok"), WRITES)
async def test_staff_may_read_but_not_change_a_superusers_key(
    client: httpx.AsyncClient,
    world: World,
    runtime: Runtime,
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
    ok: int,
) -> None:
    await add_admin_to(runtime, world, world.account_a)
    admin_key = await create(
        client, world, "superuser", name="admin_in_a", accountNumber=world.account_a.account_number
    )
    url = f"{BASE}{admin_key['id']}/"
    assert (await client.get(url, headers=world["staff_a"].headers)).status_code == 200
    response = await client.request(method, url + suffix, json=body, headers=world["staff_a"].headers)
    assert response.status_code == 403
    assert response.json()["detail"] == SUPERUSER_KEYS
    assert await authenticates(client, admin_key["key"]) == 200
    response = await client.request(method, url + suffix, json=body, headers=world["superuser"].headers)
    assert response.status_code == ok


# --- PATCH -----------------------------------------------------------------------------------------------------


async def test_patch_fields(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    created = await create(client, world, "staff_a", tags=["old"])
    url, headers = f"{BASE}{created['id']}/", world["staff_a"].headers
    body = {
        "name": "Renamed Key",
        "description": "desc",
        "version": "2.0.0",
        "tags": ["new", "blue"],
        "annotations": [{"a": "b"}],
        "expiresAt": "2099-01-01T00:00:00+00:00",
    }
    response = await client.patch(url, json=body, headers=headers)
    assert response.status_code == 200, response.text
    updated = response.json()
    assert (updated["name"], updated["description"], updated["version"]) == ("renamed_key", "desc", "2.0.0")
    assert (updated["tags"], updated["annotations"]) == (["blue", "new"], [{"a": "b"}])
    assert datetime.fromisoformat(updated["expiresAt"]) == datetime(2099, 1, 1, tzinfo=UTC)
    assert updated["keyId"] == created["keyId"]
    # Null clears the expiry; a PATCH that changes nothing keeps updatedAt.
    cleared = (await client.patch(url, json={"expiresAt": None}, headers=headers)).json()
    assert cleared["expiresAt"] is None
    same = (await client.patch(url, json={"description": "desc"}, headers=headers)).json()
    assert same["updatedAt"] == cleared["updatedAt"]
    # The owner's other key's name: 409; the key is unchanged.
    response = await client.patch(url, json={"name": "staff_a_key"}, headers=headers)
    assert response.status_code == 409
    stored = await row(runtime, created["id"])
    assert stored is not None
    assert stored.name == "renamed_key"
    assert stored.digest == keys.digest_of(created["key"])


@pytest.mark.parametrize(
    "body",
    [
        {"expiresAt": "2000-01-01T00:00:00Z"},
        {"expiresAt": "2099-01-01T00:00:00"},
        {"name": None},
        {"isActive": None},
        {"name": "bad\tname"},
        {"version": "1.0"},
        {"username": "staff_a"},
        {"digest": "0" * 128},
        {"key": "0" * 64},
        {"accountNumber": "1234-5678-9012"},
    ],
)
async def test_patch_refuses(client: httpx.AsyncClient, world: World, runtime: Runtime, body: dict[str, Any]) -> None:
    created = await create(client, world, "staff_a")
    response = await client.patch(f"{BASE}{created['id']}/", json=body, headers=world["staff_a"].headers)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"][:2] == ["body", next(iter(body))]
    stored = await row(runtime, created["id"])
    assert stored is not None
    assert (stored.name, stored.expires_at) == ("new_key", None)


# --- authentication follows every change ---------------------------------------------------------------------


async def test_deactivate_activate_toggle_take_effect_on_the_next_request(
    client: httpx.AsyncClient, world: World
) -> None:
    created = await create(client, world, "staff_a")
    key, url, headers = created["key"], f"{BASE}{created['id']}/", world["staff_a"].headers
    assert await authenticates(client, key) == 200  # cached now

    response = await client.post(url + "deactivate/", headers=headers)
    assert (response.status_code, response.json()["isActive"]) == (200, False)
    assert_problem_401(await client.get(BASE, headers=token(key)), "Api key is not activated.")
    # Deactivating again changes nothing (not even updatedAt).
    again = await client.post(url + "deactivate/", headers=headers)
    assert again.json()["updatedAt"] == response.json()["updatedAt"]

    assert (await client.post(url + "activate/", headers=headers)).json()["isActive"] is True
    assert await authenticates(client, key) == 200
    assert (await client.post(url + "toggle-active/", headers=headers)).json()["isActive"] is False
    assert await authenticates(client, key) == 401
    assert (await client.post(url + "toggle-active/", headers=headers)).json()["isActive"] is True
    assert await authenticates(client, key) == 200
    assert (await client.patch(url, json={"isActive": False}, headers=headers)).json()["isActive"] is False
    assert await authenticates(client, key) == 401


async def test_a_key_can_deactivate_itself(client: httpx.AsyncClient, world: World) -> None:
    actor = world["staff_a"]
    response = await client.post(f"{BASE}{actor.key_row.id}/deactivate/", headers=actor.headers)
    assert response.status_code == 200
    assert await authenticates(client, actor.key) == 401


async def test_delete_takes_effect_on_the_next_request(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    created = await create(client, world, "staff_a", tags=["gone"])
    key, url, headers = created["key"], f"{BASE}{created['id']}/", world["staff_a"].headers
    assert await authenticates(client, key) == 200
    response = await client.delete(url, headers=headers)
    assert (response.status_code, response.content) == (204, b"")
    assert_problem_401(await client.get(BASE, headers=token(key)), "Invalid token.")
    assert (await client.get(url, headers=headers)).status_code == 404
    assert (await client.delete(url, headers=headers)).status_code == 404
    assert await row(runtime, created["id"]) is None
    links = Base.metadata.tables["api_key_tag"]
    async with runtime.sessionmaker() as session:
        assert (await session.execute(select(func.count()).select_from(links))).scalar_one() == 0


async def test_expiry_is_enforced_and_its_change_takes_effect(client: httpx.AsyncClient, world: World) -> None:
    patched = await create(client, world, "staff_a", name="patched")
    assert await authenticates(client, patched["key"]) == 200  # cached without an expiry
    # Margin for a loaded machine: both keys must still work after the requests below.
    deadline = utcnow() + timedelta(seconds=1.2)
    created = await create(client, world, "staff_a", name="short", expiresAt=iso(deadline))
    response = await client.patch(
        f"{BASE}{patched['id']}/", json={"expiresAt": iso(deadline)}, headers=world["staff_a"].headers
    )
    assert response.status_code == 200
    assert await authenticates(client, patched["key"]) == 200
    assert await authenticates(client, created["key"]) == 200
    await asyncio.sleep(max(0.0, (deadline - utcnow()).total_seconds()) + 0.05)
    # The cached principal was dropped by the PATCH, so the new expiry is what is enforced.
    assert_problem_401(await client.get(BASE, headers=token(patched["key"])), "Invalid token.")
    assert_problem_401(await client.get(BASE, headers=token(created["key"])), "Invalid token.")


async def test_activation_is_a_targeted_update(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    created = await create(client, world, "staff_a")
    with capture_statements(runtime) as seen:
        for action in ("deactivate/", "toggle-active/", "activate/"):
            await client.post(f"{BASE}{created['id']}/{action}", headers=world["staff_a"].headers)
    flips = [s for s in seen.api_key_updates if "is_active" in s.split(" where ")[0]]
    assert len(flips) == 3
    for statement in flips:
        assignments = statement.split(" set ", 1)[1].split(" where ")[0]
        assert set(re.findall(r"(\w+)=", assignments.replace(" ", ""))) == {"is_active", "updated_at"}
        assert "api_key.id =" in statement


@pytest.mark.postgres_only
async def test_deactivation_reaches_another_process_within_a_second(
    client: httpx.AsyncClient, world: World, database_url: str
) -> None:
    other: FastAPI = create_app(support.test_settings(database_url))
    async with other.router.lifespan_context(other), support.client_for(other) as other_client:
        listener = other.state.runtime.listener
        assert listener is not None
        await asyncio.wait_for(listener.connected.wait(), timeout=5)
        created = await create(client, world, "staff_a")
        key = created["key"]
        assert await authenticates(other_client, key) == 200  # cached in the other process
        response = await client.post(f"{BASE}{created['id']}/deactivate/", headers=world["staff_a"].headers)
        assert response.status_code == 200
        started = asyncio.get_running_loop().time()
        while await authenticates(other_client, key) == 200:
            assert asyncio.get_running_loop().time() - started < 1.0, "still accepted after 1 s"
            await asyncio.sleep(0.02)


# --- OpenAPI ---------------------------------------------------------------------------------------------------


async def test_every_route_declares_its_statuses(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    expected = {
        ("/api/v1/api-keys/", "get"): {"200", "401", "422", "503"},
        ("/api/v1/api-keys/", "post"): {"201", "400", "401", "403", "404", "409", "413", "422", "503"},
        ("/api/v1/api-keys/{id}/", "get"): {"200", "401", "404", "422", "503"},
        ("/api/v1/api-keys/{id}/", "patch"): {"200", "400", "401", "403", "404", "409", "413", "422", "503"},
        ("/api/v1/api-keys/{id}/", "delete"): {"204", "401", "403", "404", "413", "422", "503"},
        ("/api/v1/api-keys/{id}/activate/", "post"): {"200", "401", "403", "404", "413", "422", "503"},
        ("/api/v1/api-keys/{id}/deactivate/", "post"): {"200", "401", "403", "404", "413", "422", "503"},
        ("/api/v1/api-keys/{id}/toggle-active/", "post"): {"200", "401", "403", "404", "413", "422", "503"},
    }
    for (path, method), statuses in expected.items():
        operation = paths[path][method]
        assert set(operation["responses"]) == statuses, (path, method)
        assert operation["summary"]
        assert operation["description"]
        assert operation["operationId"].startswith("api-keys-")
    # No response shape has a field for the digest or the token key; only the create response has `key`.
    schemas = app.openapi()["components"]["schemas"]
    assert set(schemas["ApiKeyRead"]["properties"]) == READ_FIELDS
    assert set(schemas["ApiKeyCreated"]["properties"]) == READ_FIELDS | {"key"}
