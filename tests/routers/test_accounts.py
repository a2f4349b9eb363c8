"""`/api/v1/accounts/`: scopes by role, superuser-only creation and deletion, staff-limited edits, the immutable
account number, one default account (database-enforced), the platform account, and the account cache."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from smarter.models.account import Account as SDKAccount
from sqlalchemy import func, select

from app.identifiers import PLATFORM_ACCOUNT_NUMBER, hashed_id
from app.models import Account, AccountContact, ApiKey, PluginMeta, UserProfile
from app.runtime import Runtime
from app.services import accounts, keys
from app.services.principals import principal_cache
from tests.support import World, statements, unit_of_work

BASE = "/api/v1/accounts/"
PROBLEM = "application/problem+json"
ROLES = ("superuser", "staff_a", "regular_a", "staff_b", "regular_b", "multi")
# Which of the seeded accounts (p: platform, a, b) each actor can read, and administer.
VISIBLE = {"superuser": "pab", "staff_a": "a", "regular_a": "a", "staff_b": "b", "regular_b": "b", "multi": "ab"}
ADMIN_OF = {"superuser": "pab", "staff_a": "a", "regular_a": "", "staff_b": "b", "regular_b": "", "multi": ""}
READ_FIELDS = {
    "id",
    "hashedId",
    "recordLocator",
    "name",
    "description",
    "version",
    "tags",
    "annotations",
    "createdAt",
    "updatedAt",
    "accountNumber",
    "isDefaultAccount",
    "companyName",
    "phoneNumber",
    "address1",
    "address2",
    "city",
    "state",
    "postalCode",
    "country",
    "language",
    "timezone",
    "currency",
    "isActive",
}


def ids(world: World) -> dict[str, int]:
    return {"p": world.platform.id, "a": world.account_a.id, "b": world.account_b.id}


def tenant_of(world: World, account_number: str) -> str:
    return {
        world.platform.account_number: "p",
        world.account_a.account_number: "a",
        world.account_b.account_number: "b",
    }[account_number]


async def stored(runtime: Runtime, account_id: int) -> Account | None:
    async with runtime.sessionmaker() as session:
        return await session.get(Account, account_id)


async def count(runtime: Runtime, model: type[Any], *where: Any) -> int:
    async with runtime.sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(model).where(*where))).scalar_one())


def assert_problem(response: httpx.Response, status: int, detail: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    if detail is not None:
        assert body["detail"] == detail
    return body


def field_error(response: httpx.Response, field: str) -> str:
    body = assert_problem(response, 422)
    messages = [e["msg"] for e in body["errors"] if e["loc"][-1] == field]
    assert messages, body
    return str(messages[0])


# --- reads ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("actor", ROLES)
async def test_list_by_role(client: httpx.AsyncClient, world: World, actor: str) -> None:
    response = await client.get(BASE, headers=world[actor].headers)
    assert response.status_code == 200, response.text
    rows = response.json()
    assert [tenant_of(world, r["accountNumber"]) for r in rows] == [t for t in "bap" if t in VISIBLE[actor]]
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)  # newest first
    for row in rows:
        assert set(row) == READ_FIELDS
        assert SDKAccount.model_validate(row).account_number == row["accountNumber"]
        assert row["hashedId"] == hashed_id(row["id"])
        assert row["recordLocator"] == f"account-{hashed_id(row['id'])}"


async def test_list_rows_show_the_stored_values(client: httpx.AsyncClient, world: World) -> None:
    rows = (await client.get(BASE, headers=world["superuser"].headers)).json()
    platform = rows[-1]
    assert {k: platform[k] for k in ("name", "accountNumber", "isDefaultAccount", "companyName", "isActive")} == {
        "name": "smarter_platform",
        "accountNumber": PLATFORM_ACCOUNT_NUMBER,
        "isDefaultAccount": True,
        "companyName": "Smarter",
        "isActive": True,
    }
    assert (platform["country"], platform["language"], platform["currency"], platform["timezone"]) == (
        "USA",
        "EN",
        "USD",
        None,
    )
    assert re.fullmatch(r"\d{4}-\d{4}-\d{4}", rows[0]["accountNumber"])


@pytest.mark.parametrize("actor", ROLES)
async def test_get_by_role_is_404_outside_scope(client: httpx.AsyncClient, world: World, actor: str) -> None:
    listed = {r["id"]: r for r in (await client.get(BASE, headers=world["superuser"].headers)).json()}
    for tenant, account_id in ids(world).items():
        response = await client.get(f"{BASE}{account_id}/", headers=world[actor].headers)
        if tenant in VISIBLE[actor]:
            assert response.status_code == 200, response.text
            assert response.json() == listed[account_id]
        else:
            assert_problem(response, 404, "No account with this id is visible to you.")


async def test_get_by_hashed_id_or_account_number(client: httpx.AsyncClient, world: World) -> None:
    headers = world["staff_a"].headers
    account = world.account_a
    by_id = await client.get(f"{BASE}{account.id}/", headers=headers)
    for key in (hashed_id(account.id), account.account_number):
        response = await client.get(f"{BASE}{key}/", headers=headers)
        assert response.status_code == 200, key
        assert response.json() == by_id.json()
    # Another tenant's number is as invisible as its id; unknown and malformed ids are plain 404s.
    for key in (world.account_b.account_number, "0000-0000-0000", "rMHx", "abc", "0", "-1", "9" * 40):
        assert_problem(await client.get(f"{BASE}{key}/", headers=headers), 404)


async def test_both_path_spellings_are_served(client: httpx.AsyncClient, world: World) -> None:
    headers = world["superuser"].headers
    assert (await client.get(BASE.rstrip("/"), headers=headers)).status_code == 200
    response = await client.get(f"{BASE}{world.account_a.id}", headers=headers)
    assert response.status_code == 200
    assert response.json()["id"] == world.account_a.id


async def test_anonymous_is_401_everywhere(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    detail = f"{BASE}{world.account_a.id}/"
    calls = [
        client.get(BASE),
        client.post(BASE, json={"name": "x", "companyName": "X"}),
        client.get(detail),
        client.patch(detail, json={"companyName": "X"}),
        client.delete(detail),
    ]
    for call in calls:
        response = await call
        assert_problem(response, 401)
        assert response.headers["www-authenticate"] == "Token"
    assert await count(runtime, Account) == 3


async def test_filters_and_pagination(client: httpx.AsyncClient, world: World) -> None:
    headers = world["superuser"].headers
    await client.patch(f"{BASE}{world.account_a.id}/", json={"tags": ["gold", "eu"]}, headers=headers)
    await client.patch(f"{BASE}{world.account_b.id}/", json={"tags": ["gold"], "isActive": False}, headers=headers)

    async def names(**params: Any) -> list[str]:
        response = await client.get(BASE, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [r["name"] for r in response.json()]

    assert await names(name="Tenant A") == ["tenant_a"]  # normalised like the stored names
    assert await names(name="nobody") == []
    assert await names(tag="gold") == ["tenant_b", "tenant_a"]
    assert await names(tag="eu") == ["tenant_a"]
    assert await names(accountNumber=world.account_b.account_number) == ["tenant_b"]
    assert await names(isActive="false") == ["tenant_b"]
    assert await names(isActive="true") == ["tenant_a", "smarter_platform"]
    assert await names(tag="gold", isActive="true") == ["tenant_a"]
    field_error(await client.get(BASE, params={"name": "\t"}, headers=headers), "name")
    # Filters never widen the scope.
    scoped = await client.get(BASE, params={"tag": "gold"}, headers=world["staff_a"].headers)
    assert [r["name"] for r in scoped.json()] == ["tenant_a"]

    first = await client.get(BASE, params={"limit": 2}, headers=headers)
    assert [r["name"] for r in first.json()] == ["tenant_b", "tenant_a"]
    match = re.fullmatch(r'<(.+)>; rel="next"', first.headers["link"])
    assert match is not None
    second = await client.get(match.group(1), headers=headers)
    assert [r["name"] for r in second.json()] == ["smarter_platform"]
    assert "link" not in second.headers
    assert "link" not in (await client.get(BASE, params={"limit": 3}, headers=headers)).headers
    field_error(await client.get(BASE, params={"limit": 0}, headers=headers), "limit")


async def test_list_loads_tags_in_one_query_whatever_the_page(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    headers = world["superuser"].headers
    for index in range(6):
        body = {"name": f"extra_{index}", "companyName": "Extra", "tags": [f"t{index}", "shared"]}
        assert (await client.post(BASE, json=body, headers=headers)).status_code == 201
    await client.get(BASE, headers=headers)  # warm the principal cache
    for limit in (1, 9):
        with statements(runtime) as seen:
            response = await client.get(BASE, params={"limit": limit}, headers=headers)
        assert len(response.json()) == limit
        assert len(seen) == 2  # the page, then every row's tags at once
    assert response.json()[0]["tags"] == ["shared", "t5"]


# --- create ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("actor", ROLES)
async def test_create_by_role(client: httpx.AsyncClient, world: World, runtime: Runtime, actor: str) -> None:
    body = {"name": "Acme Corp", "companyName": "Acme, Inc.", "tags": ["new"], "city": "Cambridge"}
    response = await client.post(BASE, json=body, headers=world[actor].headers)
    if actor != "superuser":
        assert_problem(response, 403, "Only a superuser can create accounts.")
        assert await count(runtime, Account) == 3
        return
    assert response.status_code == 201, response.text
    row = response.json()
    assert set(row) == READ_FIELDS
    assert re.fullmatch(r"[0-9]{4}-[0-9]{4}-[0-9]{4}", row["accountNumber"])
    assert row["accountNumber"] not in {world.platform.account_number, world.account_a.account_number}
    expected = {
        "name": "acme_corp",
        "companyName": "Acme, Inc.",
        "city": "Cambridge",
        "tags": ["new"],
        "country": "USA",
        "language": "EN",
        "currency": "USD",
        "timezone": None,
        "isActive": True,
        "isDefaultAccount": False,
        "version": "1.0.0",
        "description": "",
    }
    assert {k: row[k] for k in expected} == expected
    account = await stored(runtime, row["id"])
    assert account is not None
    assert (account.name, account.account_number, account.company_name) == (
        "acme_corp",
        row["accountNumber"],
        "Acme, Inc.",
    )
    assert (await client.get(f"{BASE}{row['id']}/", headers=world[actor].headers)).json() == row


async def test_create_with_a_given_number(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    headers = world["superuser"].headers
    made = await client.post(
        BASE, json={"name": "numbered", "companyName": "N", "accountNumber": "1234-5678-9012"}, headers=headers
    )
    assert made.status_code == 201, made.text
    assert made.json()["accountNumber"] == "1234-5678-9012"
    used = await client.post(
        BASE,
        json={"name": "other", "companyName": "N", "account_number": world.account_a.account_number},
        headers=headers,
    )
    body = assert_problem(used, 409, "An account with this account number already exists.")
    assert body["errors"][0]["loc"] == ["body", "accountNumber"]
    for bad in ("123456789012", "1234-5678-901", "１２３４-5678-9012", "1234-5678-9012\n", 1234):
        response = await client.post(
            BASE, json={"name": "bad", "companyName": "B", "accountNumber": bad}, headers=headers
        )
        field_error(response, "accountNumber")
    assert await count(runtime, Account) == 4


async def test_create_name_is_normalised_and_unique(client: httpx.AsyncClient, world: World) -> None:
    headers = world["superuser"].headers
    body = assert_problem(
        await client.post(BASE, json={"name": "Tenant A", "companyName": "X"}, headers=headers),
        409,
        "An account with this name already exists.",
    )
    assert body["errors"][0]["loc"] == ["body", "name"]
    field_error(await client.post(BASE, json={"name": "!!!", "companyName": "X"}, headers=headers), "name")
    field_error(await client.post(BASE, json={"name": "a\nb", "companyName": "X"}, headers=headers), "name")
    field_error(await client.post(BASE, json={"companyName": "X"}, headers=headers), "name")
    field_error(await client.post(BASE, json={"name": "x"}, headers=headers), "companyName")
    field_error(await client.post(BASE, json={"name": "x", "companyName": "  "}, headers=headers), "companyName")
    unknown = await client.post(BASE, json={"name": "x", "companyName": "X", "owner": "me"}, headers=headers)
    field_error(unknown, "owner")
    malformed = await client.post(BASE, content=b"{", headers={**headers, "content-type": "application/json"})
    assert_problem(malformed, 400)


@pytest.mark.parametrize(
    ("field", "good", "bad"),
    [
        ("country", ["US", "USA", "FRA"], ["us", "U", "USAA", "U5", "", "Ü S"]),
        ("currency", ["USD", "EUR"], ["usd", "US", "EURO", "12A"]),
        ("language", ["EN", "en", "en-US", "es-419", "zh-Hant-TW", "fil"], ["english", "e", "en_US", "en-", "en-USA1"]),
        (
            "timezone",
            ["America/New_York", "UTC", "Europe/Paris", "America/Argentina/Buenos_Aires"],
            ["Mars/Olympus", "America", "America/", "../etc/passwd", "/etc/localtime", "utc ", "a\x00b", "", "x" * 70],
        ),
    ],
)
async def test_code_fields_are_validated(
    client: httpx.AsyncClient, world: World, field: str, good: list[str], bad: list[str]
) -> None:
    headers = world["superuser"].headers
    for index, value in enumerate(good):
        response = await client.post(
            BASE, json={"name": f"ok_{index}", "companyName": "X", field: value}, headers=headers
        )
        assert response.status_code == 201, (value, response.text)
        assert response.json()[field] == value
    for value in bad:
        field_error(
            await client.post(BASE, json={"name": "bad", "companyName": "X", field: value}, headers=headers), field
        )
        # The same rule on PATCH (one definition).
        patch = await client.patch(f"{BASE}{world.account_a.id}/", json={field: value}, headers=headers)
        field_error(patch, field)


async def test_second_default_account_is_409(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    headers = world["superuser"].headers
    refused = await client.post(BASE, json={"name": "d", "companyName": "D", "isDefaultAccount": True}, headers=headers)
    body = assert_problem(refused, 409, "There is already a default account.")
    assert body["errors"][0]["loc"] == ["body", "isDefaultAccount"]
    patch_a = f"{BASE}{world.account_a.id}/"
    assert_problem(await client.patch(patch_a, json={"isDefaultAccount": True}, headers=headers), 409)
    assert await count(runtime, Account, Account.is_default_account) == 1

    # Moving the default: unset the current one first.
    unset = await client.patch(f"{BASE}{world.platform.id}/", json={"isDefaultAccount": False}, headers=headers)
    assert unset.json()["isDefaultAccount"] is False
    moved = await client.patch(patch_a, json={"isDefaultAccount": True}, headers=headers)
    assert moved.status_code == 200, moved.text
    assert moved.json()["isDefaultAccount"] is True
    async with runtime.sessionmaker() as session:
        defaults = (await session.execute(select(Account.id).where(Account.is_default_account))).scalars().all()
    assert defaults == [world.account_a.id]


async def test_concurrent_creates_never_make_two_defaults_or_share_a_number(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    headers = world["superuser"].headers
    await client.patch(f"{BASE}{world.platform.id}/", json={"isDefaultAccount": False}, headers=headers)
    defaults = await asyncio.gather(
        *(
            client.post(BASE, json={"name": f"d{n}", "companyName": "D", "isDefaultAccount": True}, headers=headers)
            for n in range(6)
        )
    )
    assert sorted(r.status_code for r in defaults) == [201] + [409] * 5
    assert await count(runtime, Account, Account.is_default_account) == 1
    numbered = await asyncio.gather(
        *(
            client.post(
                BASE, json={"name": f"n{n}", "companyName": "N", "accountNumber": "5555-5555-5555"}, headers=headers
            )
            for n in range(6)
        )
    )
    assert sorted(r.status_code for r in numbered) == [201] + [409] * 5
    assert await count(runtime, Account, Account.account_number == "5555-5555-5555") == 1


# --- update ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("actor", ROLES)
async def test_patch_by_role(client: httpx.AsyncClient, world: World, runtime: Runtime, actor: str) -> None:
    for tenant, account_id in ids(world).items():
        response = await client.patch(
            f"{BASE}{account_id}/", json={"companyName": f"By {actor}"}, headers=world[actor].headers
        )
        account = await stored(runtime, account_id)
        assert account is not None
        if tenant in ADMIN_OF[actor]:
            assert response.status_code == 200, response.text
            assert response.json()["companyName"] == f"By {actor}"
            assert account.company_name == f"By {actor}"
            continue
        assert account.company_name != f"By {actor}"
        if tenant in VISIBLE[actor]:
            assert_problem(response, 403, "Only staff of this account (or a superuser) can change it.")
        else:
            assert_problem(response, 404, "No account with this id is visible to you.")


async def test_staff_may_change_only_their_fields(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    url = f"{BASE}{world.account_a.id}/"
    headers = world["staff_a"].headers
    allowed = {
        "description": "Our tenant",
        "tags": ["blue", "red"],
        "annotations": [{"smarter.sh/owner": "ops"}],
        "companyName": "Tenant A, LLC",
        "phoneNumber": "617-555-1212",
        "address1": "1 Main St",
        "address2": "Suite 100",
        "city": "Cambridge",
        "state": "MA",
        "postalCode": "02139",
        "country": "US",
        "language": "en-US",
        "timezone": "America/New_York",
        "currency": "EUR",
    }
    response = await client.patch(url, json=allowed, headers=headers)
    assert response.status_code == 200, response.text
    assert {k: response.json()[k] for k in allowed} == allowed
    account = await stored(runtime, world.account_a.id)
    assert account is not None
    assert (account.company_name, account.currency, account.postal_code) == ("Tenant A, LLC", "EUR", "02139")

    for refused in ({"name": "renamed"}, {"isActive": False}, {"isDefaultAccount": False}, {"version": "2.0.0"}):
        (field,) = refused
        response = await client.patch(url, json={**refused, "city": "Boston"}, headers=headers)
        assert_problem(response, 403, f"Only a superuser can change {field}.")
    both = await client.patch(url, json={"name": "x", "isActive": False}, headers=headers)
    assert_problem(both, 403, "Only a superuser can change isActive, name.")
    after = await stored(runtime, world.account_a.id)
    assert after is not None
    assert (after.name, after.is_active, after.city, after.version) == ("tenant_a", True, "Cambridge", "1.0.0")

    by_superuser = await client.patch(
        url, json={"name": "Tenant Alpha", "isActive": False, "version": "2.0.0"}, headers=world["superuser"].headers
    )
    assert by_superuser.status_code == 200, by_superuser.text
    assert (by_superuser.json()["name"], by_superuser.json()["isActive"]) == ("tenant_alpha", False)
    taken = await client.patch(url, json={"name": "tenant_b"}, headers=world["superuser"].headers)
    assert_problem(taken, 409, "An account with this name already exists.")


@pytest.mark.parametrize("spelling", ["accountNumber", "account_number"])
async def test_account_number_is_immutable(
    client: httpx.AsyncClient, world: World, runtime: Runtime, spelling: str
) -> None:
    url = f"{BASE}{world.account_a.id}/"
    for value in ("1111-2222-3333", world.account_a.account_number, None):
        response = await client.patch(url, json={spelling: value, "city": "Boston"}, headers=world["superuser"].headers)
        message = field_error(response, spelling)
        assert "accountNumber is immutable" in message
    account = await stored(runtime, world.account_a.id)
    assert account is not None
    assert (account.account_number, account.city) == (world.account_a.account_number, None)


async def test_patch_null_clears_optional_fields_only(client: httpx.AsyncClient, world: World) -> None:
    url = f"{BASE}{world.account_a.id}/"
    headers = world["superuser"].headers
    await client.patch(url, json={"city": "Cambridge", "timezone": "UTC"}, headers=headers)
    cleared = await client.patch(url, json={"city": None, "timezone": None, "country": None}, headers=headers)
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["city"], cleared.json()["timezone"], cleared.json()["country"]) == (None, None, None)
    for field in ("companyName", "name", "isActive", "isDefaultAccount", "tags", "description"):
        field_error(await client.patch(url, json={field: None}, headers=headers), field)
    field_error(await client.patch(url, json={"isActive": "maybe"}, headers=headers), "isActive")


async def test_same_values_again_change_nothing(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    url = f"{BASE}{world.account_a.id}/"
    headers = world["superuser"].headers
    first = await client.patch(url, json={"companyName": "Same", "tags": ["b", "B", "a"]}, headers=headers)
    again = await client.patch(url, json={"companyName": "Same", "tags": ["a", "B", "b"]}, headers=headers)
    assert again.json() == first.json()  # not even updatedAt moved
    assert first.json()["tags"] == ["B", "a", "b"]  # code point order, whatever the database's collation
    assert (await client.get(url, headers=headers)).json() == first.json()
    tags_only = await client.patch(url, json={"tags": ["c"]}, headers=headers)
    assert tags_only.json()["tags"] == ["c"]
    assert tags_only.json()["updatedAt"] > first.json()["updatedAt"]  # tag changes modify the account


async def test_patch_is_visible_on_the_next_get(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    url = f"{BASE}{world.account_a.id}/"
    headers = world["staff_a"].headers
    by_number = f"{BASE}{world.account_a.account_number}/"
    before = (await client.get(url, headers=headers)).json()
    assert (await client.get(by_number, headers=headers)).json() == before
    with statements(runtime) as seen:
        cached = await client.get(url, headers=headers)
        await client.get(by_number, headers=headers)
    assert cached.json() == before
    assert seen == []  # principal and account both cached: no database I/O at all

    patched = await client.patch(url, json={"companyName": "Fresh", "tags": ["new"]}, headers=headers)
    assert patched.status_code == 200
    for path in (url, by_number):
        after = (await client.get(path, headers=headers)).json()
        assert after == patched.json()
        assert (after["companyName"], after["tags"]) == ("Fresh", ["new"])
    assert after["updatedAt"] > before["updatedAt"]
    assert after["createdAt"] == before["createdAt"]


async def test_flag_changes_refresh_the_members_principals(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    cache = principal_cache(runtime.caches)
    members = [keys.digest_of(world[actor].key) for actor in ("staff_a", "regular_a", "multi")]
    outsider = keys.digest_of(world["staff_b"].key)
    for actor in ("staff_a", "regular_a", "multi", "staff_b"):
        await client.get(BASE, headers=world[actor].headers)
    assert all(cache.peek(digest) is not None for digest in [*members, outsider])
    url = f"{BASE}{world.account_a.id}/"
    # Metadata leaves principals alone; a flag reloads every member's on their next request.
    await client.patch(url, json={"companyName": "Metadata only"}, headers=world["superuser"].headers)
    assert all(cache.peek(digest) is not None for digest in members)
    await client.patch(url, json={"isActive": False}, headers=world["superuser"].headers)
    assert all(cache.peek(digest) is None for digest in members)
    assert cache.peek(outsider) is not None
    # An inactive account's keys stop working; its members lose it; a superuser still sees it.
    assert (await client.get(url, headers=world["staff_a"].headers)).status_code == 401
    assert (await client.get(url, headers=world["multi"].headers)).status_code == 404
    assert (await client.get(url, headers=world["superuser"].headers)).json()["isActive"] is False


async def test_writes_outside_the_api_need_the_cache_to_be_told(world: World, runtime: Runtime) -> None:
    """Any write through a unit of work invalidates what its rows feed (`cache_rules`), services or not."""
    engine, caches = runtime.engine, runtime.caches
    snapshot = await accounts.cached_by_id(engine, caches, world.account_b.id)
    assert snapshot is not None
    assert snapshot.name == "tenant_b"
    async with unit_of_work(runtime) as session:
        account = await session.get(Account, world.account_b.id)
        assert account is not None
        account.company_name = "Changed"
    refreshed = await accounts.cached_by_number(engine, caches, world.account_b.account_number)
    assert refreshed is not None
    assert b'"companyName":"Changed"' in refreshed.detail
    assert await accounts.cached_by_number(engine, caches, "not-a-number") is None


# --- delete ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("actor", ROLES)
async def test_delete_by_role(client: httpx.AsyncClient, world: World, runtime: Runtime, actor: str) -> None:
    for tenant in "ab":
        account_id = ids(world)[tenant]
        response = await client.delete(f"{BASE}{account_id}/", headers=world[actor].headers)
        if actor == "superuser":
            assert response.status_code == 204, response.text
            assert response.content == b""
            assert await stored(runtime, account_id) is None
        elif tenant in VISIBLE[actor]:
            assert_problem(response, 403, "Only a superuser can delete accounts.")
            assert await stored(runtime, account_id) is not None
        else:
            assert_problem(response, 404, "No account with this id is visible to you.")
            assert await stored(runtime, account_id) is not None


async def test_platform_account_cannot_be_deleted(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    for key in (str(world.platform.id), PLATFORM_ACCOUNT_NUMBER, hashed_id(world.platform.id)):
        response = await client.delete(f"{BASE}{key}/", headers=world["superuser"].headers)
        assert_problem(response, 409, "The platform account cannot be deleted.")
    assert await stored(runtime, world.platform.id) is not None
    assert (await client.get(BASE, headers=world["superuser"].headers)).status_code == 200


async def test_delete_cascades_and_takes_effect_on_the_next_request(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    account_a = world.account_a
    staff = world["staff_a"].headers
    plugin = await client.post("/api/v1/plugins/", json={"name": "doomed", "description": "d"}, headers=staff)
    assert plugin.status_code == 201, plugin.text
    # Warm every cache that shows account A: its members' principals, the account and the plugin.
    for actor in ("staff_a", "regular_a", "multi"):
        assert (await client.get(BASE, headers=world[actor].headers)).status_code == 200
    assert (await client.get(f"{BASE}{account_a.id}/", headers=world["multi"].headers)).status_code == 200
    assert (await client.get(f"/api/v1/plugins/{plugin.json()['id']}/", headers=staff)).status_code == 200

    deleted = await client.delete(f"{BASE}{account_a.account_number}/", headers=world["superuser"].headers)
    assert deleted.status_code == 204

    assert await count(runtime, UserProfile, UserProfile.account_id == account_a.id) == 0
    assert await count(runtime, AccountContact, AccountContact.account_id == account_a.id) == 0
    assert await count(runtime, PluginMeta) == 0
    assert await count(runtime, ApiKey, ApiKey.id == world["staff_a"].key_row.id) == 0
    # staff_a's named key went with the account; login tokens belong to users and survive.
    assert_problem(await client.get(BASE, headers=staff), 401)
    orphan = await client.get(BASE, headers=world["regular_a"].headers)
    assert orphan.status_code == 200
    assert orphan.json() == []
    multi = await client.get(BASE, headers=world["multi"].headers)
    assert [r["name"] for r in multi.json()] == ["tenant_b"]
    assert_problem(await client.get(f"{BASE}{account_a.id}/", headers=world["multi"].headers), 404)
    assert_problem(await client.get(f"{BASE}{account_a.id}/", headers=world["superuser"].headers), 404)
    assert_problem(await client.get(f"{BASE}{account_a.account_number}/", headers=world["superuser"].headers), 404)
    assert_problem(await client.delete(f"{BASE}{account_a.id}/", headers=world["superuser"].headers), 404)


# --- OpenAPI --------------------------------------------------------------------------------------------------


async def test_openapi_declares_every_status(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    expected = {
        ("/api/v1/accounts/", "get"): {"200", "401", "422", "503"},
        ("/api/v1/accounts/", "post"): {"201", "400", "401", "403", "409", "413", "422", "503"},
        ("/api/v1/accounts/{id}/", "get"): {"200", "401", "404", "422", "503"},
        ("/api/v1/accounts/{id}/", "patch"): {"200", "400", "401", "403", "404", "409", "413", "422", "503"},
        ("/api/v1/accounts/{id}/", "delete"): {"204", "401", "403", "404", "409", "413", "422", "503"},
    }
    for (path, method), statuses in expected.items():
        operation = paths[path][method]
        assert set(operation["responses"]) == statuses, (path, method)
        assert operation["summary"]
        assert operation["description"]
        assert operation["operationId"].startswith("accounts-")
    create = paths["/api/v1/accounts/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert create["$ref"].endswith("/AccountCreate")
