"""`/api/v1/accounts/users/`: scopes by role, creation, self-service and staff edits, deletion, and
the effect of a changed user on their very next request."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from smarter.models.account import User as SDKUser
from sqlalchemy import func, select

from app.identifiers import hashed_id
from app.models import AccountContact, ApiKey, User, UserProfile
from app.runtime import Runtime
from tests.support import World

BASE = "/api/v1/accounts/users/"
EVERYONE = {"admin", "staff_a", "regular_a", "staff_b", "regular_b", "multi"}
VISIBLE = {
    "superuser": EVERYONE,
    "staff_a": {"staff_a", "regular_a", "multi"},
    "staff_b": {"staff_b", "regular_b", "multi"},
    "regular_a": {"regular_a"},
    "regular_b": {"regular_b"},
    "multi": {"multi"},
}
USERNAME_OF = {"superuser": "admin"}


def username_of(actor: str) -> str:
    return USERNAME_OF.get(actor, actor)


async def user_row(runtime: Runtime, username: str) -> User | None:
    async with runtime.sessionmaker() as session:
        return (await session.execute(select(User).where(User.username == username))).scalar_one_or_none()


async def count(runtime: Runtime, model: type[Any], *where: Any) -> int:
    async with runtime.sessionmaker() as session:
        statement = select(func.count()).select_from(model).where(*where)
        return int((await session.execute(statement)).scalar_one())


async def create(client: httpx.AsyncClient, world: World, actor: str, **body: Any) -> dict[str, Any]:
    response = await client.post(BASE, json=body, headers=world[actor].headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def superuser_in_a(client: httpx.AsyncClient, world: World) -> dict[str, Any]:
    """A superuser with a profile in tenant A (so staff_a can see, but not change, them)."""
    return await create(
        client,
        world,
        "superuser",
        username="root_a",
        email="root_a@example.com",
        isSuperuser=True,
        isStaff=True,
        accountNumber=world.account_a.account_number,
    )


# --- reads ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("actor", sorted(VISIBLE))
async def test_list_by_role(client: httpx.AsyncClient, world: World, actor: str) -> None:
    response = await client.get(BASE, headers=world[actor].headers)
    assert response.status_code == 200, response.text
    rows = response.json()
    assert {row["username"] for row in rows} == VISIBLE[actor]
    assert [row["id"] for row in rows] == sorted((row["id"] for row in rows), reverse=True)  # newest first
    for row in rows:
        SDKUser.model_validate(row)
        assert row["hashedId"] == hashed_id(row["id"])
        assert row["recordLocator"] == f"user-{row['hashedId']}"
        assert "password" not in row
        assert set(row) >= {"firstName", "lastName", "email", "isStaff", "isSuperuser", "isActive"}


@pytest.mark.parametrize("actor", sorted(VISIBLE))
async def test_get_by_role_is_404_outside_scope(client: httpx.AsyncClient, world: World, actor: str) -> None:
    for target in EVERYONE:
        user = world[target if target != "admin" else "superuser"].user
        for ident in (str(user.id), hashed_id(user.id)):
            response = await client.get(f"{BASE}{ident}/", headers=world[actor].headers)
            assert response.status_code == (200 if target in VISIBLE[actor] else 404), (target, response.text)
            if response.status_code == 200:
                assert response.json()["username"] == target
            else:
                assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("bad", ["0", "-1", "abc", "rMTAwMDAwMAx", "99999"])
async def test_get_unknown_ids_are_404(client: httpx.AsyncClient, world: World, bad: str) -> None:
    response = await client.get(f"{BASE}{bad}/", headers=world["superuser"].headers)
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("method", "path"), [("GET", ""), ("POST", ""), ("GET", "1/"), ("PATCH", "1/"), ("DELETE", "1/")]
)
async def test_anonymous_is_401(client: httpx.AsyncClient, world: World, method: str, path: str) -> None:
    for headers in ({}, {"Authorization": "Token " + "0" * 64}):
        response = await client.request(method, BASE + path, json={}, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Token"


async def test_list_filters_and_pages(client: httpx.AsyncClient, world: World) -> None:
    headers = world["superuser"].headers
    by_username = await client.get(BASE, params={"username": "staff_a"}, headers=headers)
    assert [row["username"] for row in by_username.json()] == ["staff_a"]
    by_name = await client.get(BASE, params={"name": "multi"}, headers=headers)
    assert [row["username"] for row in by_name.json()] == ["multi"]
    in_b = await client.get(BASE, params={"accountNumber": world.account_b.account_number}, headers=headers)
    assert {row["username"] for row in in_b.json()} == {"staff_b", "regular_b", "multi"}

    await client.patch(f"{BASE}{world['regular_b'].user.id}/", json={"isActive": False}, headers=headers)
    inactive = await client.get(BASE, params={"isActive": "false"}, headers=headers)
    assert [row["username"] for row in inactive.json()] == ["regular_b"]
    active = await client.get(BASE, params={"isActive": "true"}, headers=headers)
    assert "regular_b" not in {row["username"] for row in active.json()}

    first = await client.get(BASE, params={"limit": 4}, headers=headers)
    assert len(first.json()) == 4
    assert 'rel="next"' in first.headers["link"]
    rest = await client.get(BASE, params={"limit": 4, "offset": 4}, headers=headers)
    assert len(rest.json()) == 2
    assert "link" not in rest.headers
    assert {row["username"] for row in first.json() + rest.json()} == EVERYONE


# --- create ---------------------------------------------------------------------------------------------------


async def test_staff_creates_user_with_profile_and_contact(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    row = await create(
        client,
        world,
        "staff_a",
        username="new.user",
        email="new@example.com",
        first_name="New",
        lastName="User",
        password="correct horse battery",
    )
    assert row["username"] == "new.user"
    assert row["firstName"] == "New"
    assert row["isStaff"] is False
    assert row["isSuperuser"] is False
    assert row["isActive"] is True
    assert "password" not in row
    stored = await user_row(runtime, "new.user")
    assert stored is not None
    assert stored.password.startswith("$argon2")
    assert await count(runtime, UserProfile, UserProfile.user_id == stored.id) == 1
    assert (
        await count(
            runtime, UserProfile, UserProfile.user_id == stored.id, UserProfile.account_id == world.account_a.id
        )
        == 1
    )
    assert (
        await count(
            runtime,
            AccountContact,
            AccountContact.account_id == world.account_a.id,
            AccountContact.email == "new@example.com",
        )
        == 1
    )
    # The new user logs in with the password, and staff_a now sees them.
    login = await client.post("/api/v1/auth/login/", auth=("new.user", "correct horse battery"))
    assert login.status_code == 200, login.text
    listed = await client.get(BASE, headers=world["staff_a"].headers)
    assert "new.user" in {r["username"] for r in listed.json()}


@pytest.mark.parametrize("actor", ["regular_a", "multi"])
async def test_regular_users_cannot_create(
    client: httpx.AsyncClient, world: World, runtime: Runtime, actor: str
) -> None:
    response = await client.post(BASE, json={"username": "sneaky"}, headers=world[actor].headers)
    assert response.status_code == 403
    assert await user_row(runtime, "sneaky") is None


async def test_only_a_superuser_creates_superusers(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    refused = await client.post(BASE, json={"username": "boss", "isSuperuser": True}, headers=world["staff_a"].headers)
    assert refused.status_code == 403
    assert await user_row(runtime, "boss") is None

    row = await superuser_in_a(client, world)
    assert row["isSuperuser"] is True
    stored = await user_row(runtime, "root_a")
    assert stored is not None
    assert (
        await count(
            runtime, UserProfile, UserProfile.user_id == stored.id, UserProfile.account_id == world.account_a.id
        )
        == 1
    )


async def test_create_in_a_named_account(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    number_b = world.account_b.account_number
    # Staff name only accounts they belong to; a superuser any (body or query).
    refused = await client.post(
        BASE, json={"username": "x_in_b", "accountNumber": number_b}, headers=world["staff_a"].headers
    )
    assert refused.status_code == 422
    assert await user_row(runtime, "x_in_b") is None
    await create(client, world, "superuser", username="x_in_b", accountNumber=number_b)
    by_query = await client.post(
        BASE, params={"accountNumber": number_b}, json={"username": "y_in_b"}, headers=world["superuser"].headers
    )
    assert by_query.status_code == 201
    for username in ("x_in_b", "y_in_b"):
        stored = await user_row(runtime, username)
        assert stored is not None
        assert (
            await count(
                runtime, UserProfile, UserProfile.user_id == stored.id, UserProfile.account_id == world.account_b.id
            )
            == 1
        )
    unknown = await client.post(
        BASE, json={"username": "z", "accountNumber": "0000-0000-0001"}, headers=world["superuser"].headers
    )
    assert unknown.status_code == 422


async def test_duplicate_username_is_409(client: httpx.AsyncClient, world: World) -> None:
    response = await client.post(BASE, json={"username": "regular_b"}, headers=world["staff_a"].headers)
    assert response.status_code == 409
    assert response.json()["detail"] == "A user with this username already exists."


@pytest.mark.parametrize(
    "body",
    [
        {"username": "has space"},
        {"username": ""},
        {"username": "x" * 151},
        {"username": "ok\n"},
        {"username": "ok", "email": "not-an-email"},
        {"username": "ok", "password": "Zq9!x"},
        {"username": "ok", "isAdmin": True},
        {"username": "ok", "id": 5},
        {"username": "ok", "dateJoined": "2024-01-01T00:00:00Z"},
        {"username": "ok", "firstName": "a\tb"},
    ],
)
async def test_create_rejects_invalid_and_unknown_fields(
    client: httpx.AsyncClient, world: World, runtime: Runtime, body: dict[str, Any]
) -> None:
    response = await client.post(BASE, json=body, headers=world["staff_a"].headers)
    assert response.status_code == 422, response.text
    assert response.json()["errors"]
    assert "Zq9!x" not in response.text  # submitted values (passwords above all) are never echoed
    assert await user_row(runtime, "ok") is None


# --- update ---------------------------------------------------------------------------------------------------


async def test_users_edit_their_own_names_email_and_password(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    me = world["regular_a"]
    response = await client.patch(
        f"{BASE}{me.user.id}/",
        json={"firstName": "Reggie", "last_name": "A", "email": "reggie@example.com", "password": "a new password"},
        headers=me.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["firstName"] == "Reggie"
    assert response.json()["email"] == "reggie@example.com"
    login = await client.post("/api/v1/auth/login/", auth=("regular_a", "a new password"))
    assert login.status_code == 200
    # Contacts are the account's records: the user's email change leaves them alone.
    assert await count(runtime, AccountContact, AccountContact.email == "regular_a@example.com") == 1
    assert await count(runtime, AccountContact, AccountContact.email == "reggie@example.com") == 0


@pytest.mark.parametrize(
    "body", [{"isStaff": True}, {"isActive": False}, {"isSuperuser": True}, {"is_staff": True, "firstName": "x"}]
)
async def test_regular_users_cannot_change_their_flags(
    client: httpx.AsyncClient, world: World, runtime: Runtime, body: dict[str, Any]
) -> None:
    me = world["regular_a"]
    response = await client.patch(f"{BASE}{me.user.id}/", json=body, headers=me.headers)
    assert response.status_code == 403
    stored = await user_row(runtime, "regular_a")
    assert stored is not None
    assert (stored.is_staff, stored.is_active, stored.is_superuser, stored.first_name) == (False, True, False, "")


async def test_sending_back_unchanged_flags_is_not_a_change(client: httpx.AsyncClient, world: World) -> None:
    me = world["regular_a"]
    response = await client.patch(
        f"{BASE}{me.user.id}/", json={"isStaff": False, "isActive": True, "isSuperuser": False}, headers=me.headers
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "body", [{"username": "renamed"}, {"id": 9}, {"isAdmin": True}, {"email": None}, {"isStaff": None}]
)
async def test_update_rejects_read_only_unknown_and_null_fields(
    client: httpx.AsyncClient, world: World, body: dict[str, Any]
) -> None:
    response = await client.patch(f"{BASE}{world['regular_a'].user.id}/", json=body, headers=world["staff_a"].headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"][-1] == next(iter(body))


async def test_update_bad_json_is_400(client: httpx.AsyncClient, world: World) -> None:
    response = await client.patch(
        f"{BASE}{world['regular_a'].user.id}/",
        content=b"{not json",
        headers={**world["staff_a"].headers, "content-type": "application/json"},
    )
    assert response.status_code == 400


async def test_staff_manage_users_of_their_accounts(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    staff = world["staff_a"]
    target = world["regular_a"].user.id
    response = await client.patch(
        f"{BASE}{target}/", json={"isStaff": True, "lastName": "Promoted"}, headers=staff.headers
    )
    assert response.status_code == 200
    assert response.json()["isStaff"] is True
    # Never isSuperuser, never another tenant's user.
    escalate = await client.patch(f"{BASE}{target}/", json={"isSuperuser": True}, headers=staff.headers)
    assert escalate.status_code == 403
    other = await client.patch(f"{BASE}{world['regular_b'].user.id}/", json={"isActive": False}, headers=staff.headers)
    assert other.status_code == 404
    stored = await user_row(runtime, "regular_b")
    assert stored is not None
    assert stored.is_active is True


async def test_staff_cannot_edit_or_delete_superusers(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    root = await superuser_in_a(client, world)
    staff = world["staff_a"]
    # Visible (a member of A) but not theirs to change.
    assert (await client.get(f"{BASE}{root['id']}/", headers=staff.headers)).status_code == 200
    for body in ({"isActive": False}, {"email": "mine@example.com"}, {"password": "takeover123"}):
        response = await client.patch(f"{BASE}{root['id']}/", json=body, headers=staff.headers)
        assert response.status_code == 403, body
    assert (await client.delete(f"{BASE}{root['id']}/", headers=staff.headers)).status_code == 403
    # The platform's own superuser is not even visible to staff.
    admin_id = world["superuser"].user.id
    assert (
        await client.patch(f"{BASE}{admin_id}/", json={"isActive": False}, headers=staff.headers)
    ).status_code == 404
    stored = await user_row(runtime, "root_a")
    assert stored is not None
    assert (stored.is_active, stored.email, stored.password) == (True, "root_a@example.com", "")


async def test_superuser_grants_superuser(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    response = await client.patch(
        f"{BASE}{world['staff_b'].user.id}/", json={"isSuperuser": True}, headers=world["superuser"].headers
    )
    assert response.status_code == 200
    assert response.json()["isSuperuser"] is True
    # staff_b's principal is reloaded at once: they now see every user.
    listed = await client.get(BASE, headers=world["staff_b"].headers)
    assert {row["username"] for row in listed.json()} == EVERYONE


# --- the very next request --------------------------------------------------------------------------------------


async def test_losing_is_staff_refuses_the_named_key_at_once(client: httpx.AsyncClient, world: World) -> None:
    staff = world["staff_b"]
    assert (await client.get(BASE, headers=staff.headers)).status_code == 200  # principal now cached
    demote = await client.patch(f"{BASE}{staff.user.id}/", json={"isStaff": False}, headers=world["superuser"].headers)
    assert demote.status_code == 200
    refused = await client.get(BASE, headers=staff.headers)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "API keys can only be used by staff users."
    restore = await client.patch(f"{BASE}{staff.user.id}/", json={"isStaff": True}, headers=world["superuser"].headers)
    assert restore.status_code == 200
    assert (await client.get(BASE, headers=staff.headers)).status_code == 200


async def test_deactivated_user_is_refused_at_once(client: httpx.AsyncClient, world: World) -> None:
    user = world["regular_a"]
    assert (await client.get(BASE, headers=user.headers)).status_code == 200
    response = await client.patch(f"{BASE}{user.user.id}/", json={"isActive": False}, headers=world["staff_a"].headers)
    assert response.status_code == 200
    refused = await client.get(BASE, headers=user.headers)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "User inactive or deleted."


# --- delete ---------------------------------------------------------------------------------------------------


async def test_staff_delete_a_user_of_their_account(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    victim = world["regular_a"]
    assert (await client.get(BASE, headers=victim.headers)).status_code == 200
    response = await client.delete(f"{BASE}{victim.user.id}/", headers=world["staff_a"].headers)
    assert response.status_code == 204
    assert response.content == b""
    assert await user_row(runtime, "regular_a") is None
    assert await count(runtime, UserProfile, UserProfile.user_id == victim.user.id) == 0
    assert await count(runtime, ApiKey, ApiKey.user_id == victim.user.id) == 0
    assert await count(runtime, AccountContact, AccountContact.email == "regular_a@example.com") == 1
    assert (await client.get(BASE, headers=victim.headers)).status_code == 401
    assert (await client.get(f"{BASE}{victim.user.id}/", headers=world["staff_a"].headers)).status_code == 404


async def test_delete_refusals(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    # Regular users delete nobody (others are invisible: 404; themselves: 403).
    regular = world["regular_a"]
    assert (await client.delete(f"{BASE}{world['staff_a'].user.id}/", headers=regular.headers)).status_code == 404
    assert (await client.delete(f"{BASE}{regular.user.id}/", headers=regular.headers)).status_code == 403
    # Nobody deletes themselves.
    for actor in ("staff_a", "superuser"):
        response = await client.delete(f"{BASE}{world[actor].user.id}/", headers=world[actor].headers)
        assert response.status_code == 409
        assert response.json()["detail"] == "You cannot delete your own user."
    # Other tenants' users are invisible; a user shared with another tenant is not staff_a's to erase.
    assert (
        await client.delete(f"{BASE}{world['regular_b'].user.id}/", headers=world["staff_a"].headers)
    ).status_code == 404
    shared = await client.delete(f"{BASE}{world['multi'].user.id}/", headers=world["staff_a"].headers)
    assert shared.status_code == 403
    for username in ("regular_a", "staff_a", "admin", "regular_b", "multi"):
        assert await user_row(runtime, username) is not None
    # A superuser may.
    assert (
        await client.delete(f"{BASE}{world['multi'].user.id}/", headers=world["superuser"].headers)
    ).status_code == 204
    assert await user_row(runtime, "multi") is None


async def test_superuser_deletes_a_superuser(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    root = await superuser_in_a(client, world)
    response = await client.delete(f"{BASE}{root['id']}/", headers=world["superuser"].headers)
    assert response.status_code == 204
    assert await user_row(runtime, "root_a") is None


async def test_path_without_trailing_slash(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get(f"{BASE}{world['staff_a'].user.id}", headers=world["staff_a"].headers)
    assert response.status_code == 200
    listed = await client.get(BASE.rstrip("/"), headers=world["staff_a"].headers)
    assert listed.status_code == 200


async def test_concurrent_creates_of_one_username_give_one_201(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    responses = await asyncio.gather(
        *(client.post(BASE, json={"username": "racer"}, headers=world["staff_a"].headers) for _ in range(20))
    )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 19
    assert await count(runtime, User, User.username == "racer") == 1
