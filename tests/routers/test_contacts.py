"""`/api/v1/accounts/contacts/`: read by members, written by the account's staff, unique emails per account and
one primary contact per account (database-enforced, also under concurrent writes)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from smarter.models.account import AccountContact as SDKAccountContact
from sqlalchemy import func, select

from app.identifiers import hashed_id
from app.models import AccountContact
from app.runtime import Runtime
from tests.routers.test_profiles import statements
from tests.support import World

BASE = "/api/v1/accounts/contacts/"
PRIMARY_TAKEN = "This account already has a primary contact."
# The contacts the seeded world has (one per membership, the first of each account primary), by (email, tenant).
ALL = {
    ("admin@smarter.sh", "p"),
    ("staff_a@example.com", "a"),
    ("regular_a@example.com", "a"),
    ("multi@example.com", "a"),
    ("staff_b@example.com", "b"),
    ("regular_b@example.com", "b"),
    ("multi@example.com", "b"),
}
TENANTS_OF = {"superuser": "pab", "staff_a": "a", "regular_a": "a", "staff_b": "b", "regular_b": "b", "multi": "ab"}
ADMIN_OF = {"superuser": "pab", "staff_a": "a", "regular_a": "", "staff_b": "b", "regular_b": "", "multi": ""}


def tenant_of(world: World, account_number: str) -> str:
    return {
        world.platform.account_number: "p",
        world.account_a.account_number: "a",
        world.account_b.account_number: "b",
    }[account_number]


async def contact_ids(runtime: Runtime, world: World) -> dict[tuple[str, str], int]:
    tenants = {world.platform.id: "p", world.account_a.id: "a", world.account_b.id: "b"}
    async with runtime.sessionmaker() as session:
        rows = (await session.execute(select(AccountContact.id, AccountContact.email, AccountContact.account_id))).all()
    return {(email, tenants[account_id]): id_ for id_, email, account_id in rows}


async def contact(runtime: Runtime, contact_id: int) -> AccountContact | None:
    async with runtime.sessionmaker() as session:
        return await session.get(AccountContact, contact_id)


async def primaries(runtime: Runtime, account_id: int) -> int:
    async with runtime.sessionmaker() as session:
        statement = select(func.count()).where(AccountContact.account_id == account_id, AccountContact.is_primary)
        return int((await session.execute(statement)).scalar_one())


def new_contact(**changes: Any) -> dict[str, Any]:
    return {"firstName": "Jane", "lastName": "Doe", "email": "jane@example.com", **changes}


# --- reads ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("actor", sorted(TENANTS_OF))
async def test_list_by_role(client: httpx.AsyncClient, world: World, actor: str) -> None:
    response = await client.get(BASE, headers=world[actor].headers)
    assert response.status_code == 200, response.text
    rows = response.json()
    assert {(r["email"], tenant_of(world, r["account"]["accountNumber"])) for r in rows} == {
        c for c in ALL if c[1] in TENANTS_OF[actor]
    }
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)
    for row in rows:
        SDKAccountContact.model_validate(row)
        assert row["recordLocator"] == f"accountcontact-{hashed_id(row['id'])}"
        assert set(row) >= {"createdAt", "updatedAt", "phone", "isPrimary", "isTest", "welcomed", "hashedId"}


@pytest.mark.parametrize("actor", sorted(TENANTS_OF))
async def test_get_by_role_is_404_outside_scope(
    client: httpx.AsyncClient, world: World, runtime: Runtime, actor: str
) -> None:
    for (email, tenant), contact_id in (await contact_ids(runtime, world)).items():
        response = await client.get(f"{BASE}{contact_id}/", headers=world[actor].headers)
        assert response.status_code == (200 if tenant in TENANTS_OF[actor] else 404), (email, tenant)


async def test_first_contact_of_each_account_is_primary_and_filters(client: httpx.AsyncClient, world: World) -> None:
    headers = world["superuser"].headers
    primary = await client.get(BASE, params={"isPrimary": "true"}, headers=headers)
    assert {r["email"] for r in primary.json()} == {"admin@smarter.sh", "staff_a@example.com", "staff_b@example.com"}
    in_b = await client.get(BASE, params={"accountNumber": world.account_b.account_number}, headers=headers)
    assert len(in_b.json()) == 3
    by_email = await client.get(BASE, params={"email": "multi@example.com"}, headers=headers)
    assert len(by_email.json()) == 2
    page = await client.get(BASE, params={"limit": 5}, headers=headers)
    assert len(page.json()) == 5
    assert 'rel="next"' in page.headers["link"]


async def test_list_is_one_statement_whatever_the_page(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    headers = world["superuser"].headers
    await client.get(BASE, headers=headers)  # warm the principal cache
    for limit in (1, 7):
        with statements(runtime) as seen:
            response = await client.get(BASE, params={"limit": limit}, headers=headers)
        assert len(response.json()) == limit
        assert len(seen) == 1  # the account's number is joined in


# --- create ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("actor", sorted(TENANTS_OF))
async def test_create_by_role(client: httpx.AsyncClient, world: World, runtime: Runtime, actor: str) -> None:
    response = await client.post(BASE, json=new_contact(phone="617-555-1212"), headers=world[actor].headers)
    if not ADMIN_OF[actor]:
        assert response.status_code == 403
        return
    assert response.status_code == 201, response.text
    row = response.json()
    acting = world[actor].profile.account_id
    stored = await contact(runtime, row["id"])
    assert stored is not None
    assert stored.account_id == acting
    assert (row["firstName"], row["phone"], row["isPrimary"], row["welcomed"]) == ("Jane", "617-555-1212", False, False)


async def test_create_in_a_named_account(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    number_b = world.account_b.account_number
    refused = await client.post(BASE, json=new_contact(accountNumber=number_b), headers=world["staff_a"].headers)
    assert refused.status_code == 422
    made = await client.post(BASE, json=new_contact(accountNumber=number_b), headers=world["superuser"].headers)
    assert made.status_code == 201
    assert made.json()["account"]["accountNumber"] == number_b
    # multi belongs to B but is not staff there.
    regular = await client.post(
        BASE, json=new_contact(email="m@example.com", accountNumber=number_b), headers=world["multi"].headers
    )
    assert regular.status_code == 403


async def test_unique_email_per_account(client: httpx.AsyncClient, world: World) -> None:
    taken = await client.post(BASE, json=new_contact(email="regular_a@example.com"), headers=world["staff_a"].headers)
    assert taken.status_code == 409
    assert taken.json()["detail"] == "This account already has a contact with this email."
    # The same email in another account is another contact.
    other = await client.post(BASE, json=new_contact(email="regular_a@example.com"), headers=world["staff_b"].headers)
    assert other.status_code == 201


async def test_a_second_primary_is_409(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    response = await client.post(BASE, json=new_contact(isPrimary=True), headers=world["staff_a"].headers)
    assert response.status_code == 409
    assert response.json()["detail"] == PRIMARY_TAKEN
    assert await primaries(runtime, world.account_a.id) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lastName": "Doe", "email": "x@example.com"}, "firstName"),
        (new_contact(email="nope"), "email"),
        (new_contact(email=""), "email"),
        (new_contact(firstName="   "), "firstName"),
        (new_contact(phone="1" * 21), "phone"),
        (new_contact(accountNumber="12345"), "accountNumber"),
        (new_contact(account={"accountNumber": "3141-5926-5359"}), "account"),
        (new_contact(id=3), "id"),
        (new_contact(createdAt="2024-01-01T00:00:00Z"), "createdAt"),
    ],
)
async def test_create_rejects_bad_bodies(
    client: httpx.AsyncClient, world: World, body: dict[str, Any], field: str
) -> None:
    response = await client.post(BASE, json=body, headers=world["staff_a"].headers)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"][-1] == field


# --- update and delete ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("actor", sorted(TENANTS_OF))
async def test_update_and_delete_by_role(client: httpx.AsyncClient, world: World, runtime: Runtime, actor: str) -> None:
    for (email, tenant), contact_id in (await contact_ids(runtime, world)).items():
        expected = 404 if tenant not in TENANTS_OF[actor] else 403 if tenant not in ADMIN_OF[actor] else None
        patch = await client.patch(f"{BASE}{contact_id}/", json={"phone": "555"}, headers=world[actor].headers)
        assert patch.status_code == (expected or 200), (email, tenant)
        if expected:
            stored = await contact(runtime, contact_id)
            assert stored is not None
            assert stored.phone is None
        else:
            assert patch.json()["phone"] == "555"
    # Delete one non-primary contact per tenant.
    for (email, tenant), contact_id in (await contact_ids(runtime, world)).items():
        if email.startswith("regular"):
            expected = 404 if tenant not in TENANTS_OF[actor] else 403 if tenant not in ADMIN_OF[actor] else 204
            response = await client.delete(f"{BASE}{hashed_id(contact_id)}/", headers=world[actor].headers)
            assert response.status_code == expected, (email, tenant)
            assert (await contact(runtime, contact_id) is None) == (expected == 204)


async def test_primary_moves_only_after_the_old_one_is_unset(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    ids = await contact_ids(runtime, world)
    old, new = ids[("staff_a@example.com", "a")], ids[("regular_a@example.com", "a")]
    headers = world["staff_a"].headers
    refused = await client.patch(f"{BASE}{new}/", json={"isPrimary": True}, headers=headers)
    assert refused.status_code == 409
    assert refused.json()["detail"] == PRIMARY_TAKEN
    assert (await client.patch(f"{BASE}{old}/", json={"isPrimary": False}, headers=headers)).status_code == 200
    moved = await client.patch(f"{BASE}{new}/", json={"isPrimary": True}, headers=headers)
    assert moved.status_code == 200
    assert moved.json()["isPrimary"] is True
    assert await primaries(runtime, world.account_a.id) == 1


async def test_update_fields_and_refusals(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    ids = await contact_ids(runtime, world)
    target = ids[("regular_a@example.com", "a")]
    headers = world["staff_a"].headers
    response = await client.patch(
        f"{BASE}{target}/",
        json={"firstName": "Reg", "email": "reg@example.com", "phone": "1", "isTest": True, "welcomed": True},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    row = response.json()
    assert (row["firstName"], row["email"], row["isTest"], row["welcomed"]) == ("Reg", "reg@example.com", True, True)
    cleared = await client.patch(f"{BASE}{target}/", json={"phone": None}, headers=headers)
    assert cleared.json()["phone"] is None
    clash = await client.patch(f"{BASE}{target}/", json={"email": "multi@example.com"}, headers=headers)
    assert clash.status_code == 409
    for body in (
        {"account": {"accountNumber": "3141-5926-5359"}},
        {"accountNumber": "3141-5926-5359"},
        {"email": None},
    ):
        assert (await client.patch(f"{BASE}{target}/", json=body, headers=headers)).status_code == 422
    stored = await contact(runtime, target)
    assert stored is not None
    assert (stored.account_id, stored.email) == (world.account_a.id, "reg@example.com")


async def test_concurrent_primaries_give_one_409(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    ids = await contact_ids(runtime, world)
    headers = world["staff_a"].headers
    await client.patch(f"{BASE}{ids[('staff_a@example.com', 'a')]}/", json={"isPrimary": False}, headers=headers)
    candidates = [ids[("regular_a@example.com", "a")], ids[("multi@example.com", "a")]]
    made = [
        (await client.post(BASE, json=new_contact(email=f"c{n}@example.com"), headers=headers)).json()["id"]
        for n in range(4)
    ]
    responses = await asyncio.gather(
        *(client.patch(f"{BASE}{c}/", json={"isPrimary": True}, headers=headers) for c in candidates + made)
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * (len(statuses) - 1)
    assert await primaries(runtime, world.account_a.id) == 1
