"""The tenant boundary at its edges (issue 13, contract v2 "Hardening decisions"): users shared between
accounts, keys acting in one account, inactive accounts, password changes, login throttling, the superuser's
key owner and the account-number sentinel. Through REST and manifests alike, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import func, select

from app.identifiers import ACCOUNT_NUMBER_SENTINEL, PLATFORM_ACCOUNT_NUMBER, is_account_number
from app.models import Account, ApiKey, PluginMeta, User, UserProfile
from app.models.base import utcnow
from app.runtime import Runtime
from app.services import profiles, users
from app.services.login_throttle import MAX_FAILURES, WINDOW
from tests.support import World, auth, unit_of_work

USERS = "/api/v1/accounts/users/"
KEYS = "/api/v1/api-keys/"
PLUGINS = "/api/v1/plugins/"
ACCOUNTS = "/api/v1/accounts/"
LOGIN = "/api/v1/auth/login/"
CLI = "/api/v1/cli"
PASSWORD = "correct horse battery staple"
USER_MANIFEST: dict[str, Any] = yaml.safe_load(
    (Path(__file__).parent.parent / "manifests" / "data" / "user.yaml").read_text()
)


# --- helpers ------------------------------------------------------------------------------------------------


async def shared_staff(runtime: Runtime, world: World) -> User:
    """A staff user with profiles in A and in B (A first)."""
    async with unit_of_work(runtime) as session:
        user = await users.create_user(session, username="shared_staff", email="shared@example.com", is_staff=True)
        await profiles.add_profile(session, user, world.account_a)
        await profiles.add_profile(session, user, world.account_b)
    return user


async def set_password(runtime: Runtime, username: str, password: str = PASSWORD) -> None:
    async with unit_of_work(runtime) as session:
        user = await users.get_by_username(session, username)
        assert user is not None
        await users.set_password(session, user, password)


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post(LOGIN, auth=(username, password))


async def login_token(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await login(client, username)
    assert response.status_code == 200, response.text
    return auth(response.json()["token"])


async def status_of(client: httpx.AsyncClient, headers: dict[str, str], url: str = PLUGINS) -> int:
    return (await client.get(url, headers=headers)).status_code


async def new_plugin(client: httpx.AsyncClient, headers: dict[str, str], name: str, **body: Any) -> httpx.Response:
    return await client.post(PLUGINS, json={"name": name, **body}, headers=headers)


def user_manifest(username: str, **config: Any) -> dict[str, Any]:
    document = copy.deepcopy(USER_MANIFEST)
    document["metadata"]["username"] = username
    document["metadata"]["name"] = username
    document["metadata"]["annotations"] = []  # the file's unquoted dates are not JSON
    document["spec"]["config"].update(config)
    return document


async def snapshot(runtime: Runtime, user_id: int) -> tuple[str, str, bool, bool, str]:
    async with runtime.sessionmaker() as session:
        user = await session.get(User, user_id)
        assert user is not None
        return user.email, user.first_name, user.is_staff, user.is_active, user.password


# --- a user in several accounts ----------------------------------------------------------------------------

CHANGES = {
    "password": {"password": "a brand new passphrase"},
    "email": {"email": "taken-over@example.com"},
    "names": {"firstName": "Mallory", "lastName": "Taken"},
    "isStaff": {"isStaff": True},
    "isActive": {"isActive": False},
}


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize("staff", ["staff_a", "staff_b"])
async def test_staff_cannot_change_a_user_another_tenant_shares(
    client: httpx.AsyncClient, world: World, runtime: Runtime, change: str, staff: str
) -> None:
    multi = world["multi"]
    before = await snapshot(runtime, multi.user.id)
    response = await client.patch(f"{USERS}{multi.user.id}/", json=CHANGES[change], headers=world[staff].headers)
    assert response.status_code == 403, response.text
    assert "accounts you do not administer" in response.json()["detail"]
    assert await snapshot(runtime, multi.user.id) == before
    assert await status_of(client, multi.headers) == 200  # still logged in
    # The rule binds staff, not superusers.
    response = await client.patch(f"{USERS}{multi.user.id}/", json=CHANGES[change], headers=world["superuser"].headers)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("change", CHANGES)
async def test_a_user_only_in_the_staffs_account_stays_manageable(
    client: httpx.AsyncClient, world: World, runtime: Runtime, change: str
) -> None:
    target = world["regular_a"]
    before = await snapshot(runtime, target.user.id)
    response = await client.patch(f"{USERS}{target.user.id}/", json=CHANGES[change], headers=world["staff_a"].headers)
    assert response.status_code == 200, response.text
    assert await snapshot(runtime, target.user.id) != before


async def test_staff_cannot_mint_a_key_for_a_shared_user(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    await shared_staff(runtime, world)
    for staff in ("staff_a", "staff_b"):
        response = await client.post(
            KEYS, json={"name": f"by_{staff}", "username": "shared_staff"}, headers=world[staff].headers
        )
        assert response.status_code == 403, response.text
    async with runtime.sessionmaker() as session:
        owners = select(func.count()).select_from(ApiKey).join(User).where(User.username == "shared_staff")
        assert await session.scalar(owners) == 0
    # A staff user only in A is A's staff's to equip.
    created = await client.post(USERS, json={"username": "staff_a2", "isStaff": True}, headers=world["staff_a"].headers)
    assert created.status_code == 201, created.text
    response = await client.post(KEYS, json={"name": "k", "username": "staff_a2"}, headers=world["staff_a"].headers)
    assert response.status_code == 201, response.text


async def test_a_user_manifest_cannot_change_a_shared_user(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    multi = world["multi"]
    before = await snapshot(runtime, multi.user.id)
    for document in (user_manifest("multi", email="x@example.com", isStaff=True), user_manifest("multi")):
        response = await client.post(f"{CLI}/apply/", json=document, headers=world["staff_a"].headers)
        assert response.status_code == 403, response.text
        assert response.json()["error"]["description"]
    assert await snapshot(runtime, multi.user.id) == before
    # Only in A: staff of A apply it.
    response = await client.post(
        f"{CLI}/apply/", json=user_manifest("regular_a", firstName="Reggie"), headers=world["staff_a"].headers
    )
    assert response.status_code == 200, response.text
    assert (await snapshot(runtime, world["regular_a"].user.id))[1] == "Reggie"


async def test_removing_a_shared_user_from_the_staffs_account_is_still_allowed(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    """Deleting by manifest removes the user's profile in the acting account: that account's own business."""
    response = await client.post(f"{CLI}/delete/user/", params={"name": "multi"}, headers=world["staff_a"].headers)
    assert response.status_code == 200, response.text
    async with runtime.sessionmaker() as session:
        left = await session.scalars(
            select(UserProfile.account_id).where(UserProfile.user_id == world["multi"].user.id)
        )
        assert list(left) == [world.account_b.id]
    # The REST delete of the user itself stays refused while another tenant has them.
    await shared_staff(runtime, world)
    async with runtime.sessionmaker() as session:
        shared_id = await session.scalar(select(User.id).where(User.username == "shared_staff"))
    response = await client.delete(f"{USERS}{shared_id}/", headers=world["staff_a"].headers)
    assert response.status_code == 403


# --- a key acts in one account ----------------------------------------------------------------------------


async def test_a_key_minted_in_a_cannot_read_b(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    await shared_staff(runtime, world)
    plugin_b = await new_plugin(client, world["staff_b"].headers, "b_secret")
    assert plugin_b.status_code == 201
    b_id = plugin_b.json()["id"]
    a_number, b_number = world.account_a.account_number, world.account_b.account_number
    minted = await client.post(
        KEYS,
        json={"name": "in_a", "username": "shared_staff", "accountNumber": a_number},
        headers=world["superuser"].headers,
    )
    assert minted.status_code == 201, minted.text
    key = auth(minted.json()["key"])

    assert (await client.get(f"{PLUGINS}{b_id}/", headers=key)).status_code == 404
    assert (await client.patch(f"{PLUGINS}{b_id}/", json={"description": "x"}, headers=key)).status_code == 404
    assert "b_secret" not in [row["name"] for row in (await client.get(PLUGINS, headers=key)).json()]
    key_names = [row["name"] for row in (await client.get(KEYS, headers=key)).json()]
    assert "staff_b_key" not in key_names
    user_names = {row["username"] for row in (await client.get(USERS, headers=key)).json()}
    assert "staff_b" not in user_names
    assert "staff_a" in user_names
    assert (await client.get(f"{ACCOUNTS}{world.account_b.id}/", headers=key)).status_code == 404
    # It cannot act in B by naming it, through REST or manifests.
    response = await new_plugin(client, key, "into_b", accountNumber=b_number)
    assert response.status_code == 422
    whoami = await client.post(f"{CLI}/whoami/", params={"accountNumber": b_number}, headers=key)
    assert whoami.status_code == 422
    whoami = await client.post(f"{CLI}/whoami/", headers=key)
    assert whoami.json()["data"]["account"]["accountNumber"] == a_number
    # B's staff see what is theirs only: the key is A's.
    assert "in_a" not in [row["name"] for row in (await client.get(KEYS, headers=world["staff_b"].headers)).json()]

    # The same user's login token acts in both accounts.
    await set_password(runtime, "shared_staff")
    token = await login_token(client, "shared_staff")
    assert (await client.get(f"{PLUGINS}{b_id}/", headers=token)).status_code == 200
    whoami = await client.post(f"{CLI}/whoami/", params={"accountNumber": b_number}, headers=token)
    assert whoami.json()["data"]["account"]["accountNumber"] == b_number


# --- the superuser's key owner ------------------------------------------------------------------------------


async def test_superuser_key_owner_rule(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    await shared_staff(runtime, world)
    headers = world["superuser"].headers
    # Several profiles, none in the caller's acting account (the platform's): name one.
    response = await client.post(KEYS, json={"name": "k1", "username": "shared_staff"}, headers=headers)
    assert response.status_code == 422, response.text
    assert "accountNumber" in response.json()["detail"]
    named = await client.post(
        KEYS,
        json={"name": "k1", "username": "shared_staff", "accountNumber": world.account_b.account_number},
        headers=headers,
    )
    assert named.status_code == 201
    assert named.json()["userProfile"]["account"]["accountNumber"] == world.account_b.account_number
    # One profile: that one.
    only = await client.post(KEYS, json={"name": "k2", "username": "staff_b"}, headers=headers)
    assert only.status_code == 201, only.text
    assert only.json()["userProfile"]["account"]["accountNumber"] == world.account_b.account_number
    # A profile in the acting account wins.
    added = await client.post(
        "/api/v1/accounts/user-profiles/",
        json={"username": "shared_staff", "accountNumber": PLATFORM_ACCOUNT_NUMBER},
        headers=headers,
    )
    assert added.status_code == 201
    here = await client.post(KEYS, json={"name": "k3", "username": "shared_staff"}, headers=headers)
    assert here.status_code == 201, here.text
    assert here.json()["userProfile"]["account"]["accountNumber"] == PLATFORM_ACCOUNT_NUMBER


# --- inactive accounts --------------------------------------------------------------------------------------


async def counts(runtime: Runtime) -> tuple[int | None, ...]:
    async with runtime.sessionmaker() as session:
        return tuple(
            [
                await session.scalar(select(func.count()).select_from(model))
                for model in (Account, User, UserProfile, ApiKey, PluginMeta)
            ]
        )


async def test_inactive_account(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    superuser, staff_a, regular_a, multi = (world[n] for n in ("superuser", "staff_a", "regular_a", "multi"))
    a_number = world.account_a.account_number
    plugin_a = (await new_plugin(client, staff_a.headers, "a_plugin")).json()["id"]
    plugin_b = (await new_plugin(client, world["staff_b"].headers, "b_plugin")).json()["id"]
    before = await counts(runtime)

    response = await client.patch(
        f"{ACCOUNTS}{world.account_a.id}/", json={"isActive": False}, headers=superuser.headers
    )
    assert response.status_code == 200

    # Keys owned in it: 401.
    assert await status_of(client, staff_a.headers) == 401
    # Its members' login tokens lose it: its resources 404, creating in it 422; other accounts unaffected.
    assert (await client.get(f"{PLUGINS}{plugin_a}/", headers=multi.headers)).status_code == 404
    assert (await client.get(f"{ACCOUNTS}{world.account_a.id}/", headers=multi.headers)).status_code == 404
    assert (await new_plugin(client, multi.headers, "m1", accountNumber=a_number)).status_code == 422
    assert (await client.get(f"{PLUGINS}{plugin_b}/", headers=multi.headers)).status_code == 200
    moved = await new_plugin(client, multi.headers, "m2")  # acts in B now, its only active account
    assert moved.status_code == 201
    assert moved.json()["userProfile"]["account"]["accountNumber"] == world.account_b.account_number
    assert (await new_plugin(client, regular_a.headers, "r1")).status_code == 422
    assert (await client.get(f"{PLUGINS}{plugin_a}/", headers=regular_a.headers)).status_code == 404
    whoami = await client.post(f"{CLI}/whoami/", headers=multi.headers)
    assert whoami.json()["data"]["account"]["accountNumber"] == world.account_b.account_number
    # Superusers are unaffected.
    assert (await client.get(f"{PLUGINS}{plugin_a}/", headers=superuser.headers)).status_code == 200
    # Nothing was deleted (multi's new plugin is the one more row).
    after = await counts(runtime)
    assert after[:4] == before[:4]
    assert after[4] == (before[4] or 0) + 1

    response = await client.patch(
        f"{ACCOUNTS}{world.account_a.id}/", json={"isActive": True}, headers=superuser.headers
    )
    assert response.status_code == 200
    assert await status_of(client, staff_a.headers) == 200
    assert (await client.get(f"{PLUGINS}{plugin_a}/", headers=multi.headers)).status_code == 200
    assert (await client.get(f"{PLUGINS}{plugin_a}/", headers=regular_a.headers)).status_code == 200
    assert (await new_plugin(client, regular_a.headers, "r1")).status_code == 201


# --- password changes ---------------------------------------------------------------------------------------


async def test_a_password_change_ends_login_tokens_not_keys(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    staff_a = world["staff_a"]
    await set_password(runtime, "staff_a")
    tokens = [await login_token(client, "staff_a") for _ in range(2)]
    assert all([await status_of(client, t) == 200 for t in tokens])
    # Self-service, with the named key.
    response = await client.patch(
        f"{USERS}{staff_a.user.id}/", json={"password": "another good passphrase"}, headers=staff_a.headers
    )
    assert response.status_code == 200
    assert [await status_of(client, t) for t in tokens] == [401, 401]
    assert await status_of(client, staff_a.headers) == 200  # named API keys are not affected
    assert (await login(client, "staff_a")).status_code == 401
    assert (await login(client, "staff_a", "another good passphrase")).status_code == 200


async def test_staff_changing_a_password_ends_that_users_sessions(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    regular_a = world["regular_a"]
    response = await client.patch(
        f"{USERS}{regular_a.user.id}/", json={"password": "reset by staff a"}, headers=world["staff_a"].headers
    )
    assert response.status_code == 200
    assert await status_of(client, regular_a.headers) == 401
    assert await status_of(client, world["regular_b"].headers) == 200  # other users keep theirs
    # Sending the same other fields back is no password change.
    token = auth((await login(client, "regular_a", "reset by staff a")).json()["token"])
    response = await client.patch(
        f"{USERS}{regular_a.user.id}/", json={"firstName": "Reg"}, headers=world["staff_a"].headers
    )
    assert response.status_code == 200
    assert await status_of(client, token) == 200


async def test_set_password_service_ends_login_tokens(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    """What the CLI's set-password calls."""
    await set_password(runtime, "multi", "first passphrase")
    assert await status_of(client, world["multi"].headers) == 401
    assert (await login(client, "multi", "first passphrase")).status_code == 200


# --- login throttling ---------------------------------------------------------------------------------------


async def fail(client: httpx.AsyncClient, username: str, times: int) -> None:
    for _ in range(times):
        response = await login(client, username, "wrong password")
        assert response.status_code == 401, response.text


async def test_login_throttling(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    await set_password(runtime, "regular_a")
    await set_password(runtime, "regular_b")
    await fail(client, "regular_a", MAX_FAILURES)
    for password in ("wrong password", PASSWORD):  # whatever the password
        response = await login(client, "regular_a", password)
        assert response.status_code == 429, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == 429
        assert 0 < int(response.headers["retry-after"]) <= WINDOW.total_seconds()
    # Another username is unaffected, an unknown one is counted like any other.
    assert (await login(client, "regular_b")).status_code == 200
    await fail(client, "nobody_at_all", MAX_FAILURES)
    assert (await login(client, "nobody_at_all")).status_code == 429
    # Once the window has passed, the username may try again.
    throttle = runtime.login_throttle
    assert await throttle.retry_after("regular_a") is not None
    assert await throttle.retry_after("regular_a", now=utcnow() + WINDOW + timedelta(seconds=1)) is None


async def test_a_successful_login_resets_the_count(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    await set_password(runtime, "regular_a")
    await fail(client, "regular_a", MAX_FAILURES - 1)
    assert (await login(client, "regular_a")).status_code == 200
    await fail(client, "regular_a", MAX_FAILURES - 1)
    assert (await login(client, "regular_a")).status_code == 200


# --- the account-number sentinel ----------------------------------------------------------------------------


async def test_the_sentinel_account_number_means_generate(client: httpx.AsyncClient, world: World) -> None:
    headers = world["superuser"].headers
    numbers = []
    for name in ("first_sentinel", "second_sentinel"):
        response = await client.post(
            ACCOUNTS,
            json={"name": name, "companyName": "Sentinel", "accountNumber": ACCOUNT_NUMBER_SENTINEL},
            headers=headers,
        )
        assert response.status_code == 201, response.text
        numbers.append(response.json()["accountNumber"])
    assert ACCOUNT_NUMBER_SENTINEL not in numbers
    assert all(is_account_number(n) for n in numbers)
    assert numbers[0] != numbers[1]

    example = (await client.post(f"{CLI}/example-manifest/account/", headers=headers)).json()["data"]
    example["metadata"]["name"] = "manifest_sentinel"
    example["metadata"]["accountNumber"] = ACCOUNT_NUMBER_SENTINEL
    applied = await client.post(f"{CLI}/apply/", json=example, headers=headers)
    assert applied.status_code == 200, applied.text
    number = applied.json()["data"]["metadata"]["accountNumber"]
    assert number != ACCOUNT_NUMBER_SENTINEL
    assert is_account_number(number)
    again = await client.post(f"{CLI}/apply/", json=example, headers=headers)  # re-applied as written
    assert again.status_code == 200, again.text
    assert again.json()["data"]["metadata"]["accountNumber"] == number
