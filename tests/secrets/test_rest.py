"""`/api/v1/secrets/`: CRUD, the ownership scope, 409s, the value never shown, and what is stored."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text

from app.identifiers import hashed_id
from app.main import create_app
from app.models.base import utcnow
from app.runtime import Runtime
from app.services import secrets
from tests import support
from tests.support import World, unit_of_work

BASE = "/api/v1/secrets/"
VALUE = "pl41nt3xt-value-never-shown"


async def create(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, value: str = VALUE, **extra: object
) -> httpx.Response:
    return await client.post(BASE, headers=headers, json={"name": name, "value": value, **extra})


async def test_crud_and_the_value_is_never_returned(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    staff = world["staff_a"].headers
    created = await create(client, staff, "Warehouse Password", tags=["db"], description="RO user")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == "warehouse_password"
    assert body["recordLocator"] == f"secret-{body['hashedId']}"
    assert body["userProfile"] == {
        "user": {"username": "staff_a", "email": "staff_a@example.com"},
        "account": {"accountNumber": world.account_a.account_number},
    }
    assert body["tags"] == ["db"]
    assert body["expiresAt"] is None
    assert body["lastAccessed"] is None
    assert "value" not in body
    assert VALUE not in created.text

    for ref in (body["id"], body["hashedId"]):
        got = await client.get(f"{BASE}{ref}/", headers=staff)
        assert got.status_code == 200
        assert got.json() == body
    listed = await client.get(BASE, headers=staff)
    assert [row["name"] for row in listed.json()] == ["warehouse_password"]
    assert VALUE not in listed.text

    later = (utcnow() + timedelta(days=30)).isoformat()
    patched = await client.patch(
        f"{BASE}{body['id']}/", headers=staff, json={"value": "rotated-value", "expiresAt": later}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["expiresAt"] is not None
    assert "rotated-value" not in patched.text

    assert (await client.delete(f"{BASE}{body['id']}/", headers=staff)).status_code == 204
    assert (await client.get(f"{BASE}{body['id']}/", headers=staff)).status_code == 404


async def test_no_plaintext_in_the_database(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    assert (await create(client, world["staff_a"].headers, "db_password")).status_code == 201
    async with runtime.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM secret"))).all()
    assert len(rows) == 1
    assert all(VALUE not in str(value) for value in rows[0])
    assert rows[0]._mapping["encrypted_value"].startswith("gAAAAA")  # a Fernet token


async def test_ownership_scope(client: httpx.AsyncClient, world: World) -> None:
    """Like API keys: superuser all, staff their accounts', regular users their own profiles'; else 404."""
    ids = {}
    for actor in ("staff_a", "regular_a", "staff_b", "multi"):
        response = await create(client, world[actor].headers, f"secret_of_{actor}")
        assert response.status_code == 201, response.text
        ids[actor] = response.json()["id"]
    seen = {
        "superuser": {"staff_a", "regular_a", "staff_b", "multi"},
        "staff_a": {"staff_a", "regular_a", "multi"},  # multi's first profile is in A: it acts there
        "regular_a": {"regular_a"},
        "staff_b": {"staff_b"},
        "regular_b": set(),
        "multi": {"multi"},
    }
    for actor, expected in seen.items():
        listed = await client.get(BASE, headers=world[actor].headers)
        assert {row["name"].removeprefix("secret_of_") for row in listed.json()} == expected, actor
        for owner, secret_id in ids.items():
            response = await client.get(f"{BASE}{secret_id}/", headers=world[actor].headers)
            assert response.status_code == (200 if owner in expected else 404), (actor, owner)
            patched = await client.patch(f"{BASE}{secret_id}/", headers=world[actor].headers, json={"value": "x"})
            assert patched.status_code == (200 if owner in expected else 404), (actor, owner)
    # Another tenant's secret stays 404 on delete too, and is still there afterwards.
    assert (await client.delete(f"{BASE}{ids['staff_a']}/", headers=world["staff_b"].headers)).status_code == 404
    assert (await client.get(f"{BASE}{ids['staff_a']}/", headers=world["staff_a"].headers)).status_code == 200


async def test_names_are_unique_per_account(client: httpx.AsyncClient, world: World) -> None:
    assert (await create(client, world["staff_a"].headers, "Api Key")).status_code == 201
    duplicate = await create(client, world["regular_a"].headers, "api_key")
    assert duplicate.status_code == 409
    assert duplicate.json()["detail"] == "A secret with this name already exists in this account."
    assert duplicate.json()["errors"][0]["loc"] == ["body", "name"]
    assert (await create(client, world["staff_b"].headers, "api_key")).status_code == 201  # another account
    # Renaming onto a taken name is a 409 too.
    other = (await create(client, world["staff_a"].headers, "other")).json()
    renamed = await client.patch(f"{BASE}{other['id']}/", headers=world["staff_a"].headers, json={"name": "api_key"})
    assert renamed.status_code == 409


async def test_invalid_input_is_422(client: httpx.AsyncClient, world: World) -> None:
    staff = world["staff_a"].headers
    past = (utcnow() - timedelta(days=1)).isoformat()
    cases: list[dict[str, object]] = [
        {"name": "no_value"},
        {"name": "empty", "value": ""},
        {"name": "masked", "value": "********"},
        {"name": "too_big", "value": "x" * 65537},
        {"name": "too_big_utf8", "value": "€" * 30000},  # 90 000 bytes
        {"name": "past", "value": "v", "expiresAt": past},
        {"name": "naive", "value": "v", "expiresAt": "2030-01-01T00:00:00"},
        {"name": "bad name!\n", "value": "v"},
        {"name": "unknown_field", "value": "v", "encryptedValue": "x"},
        {"name": "read_only", "value": "v", "lastAccessed": "2030-01-01T00:00:00Z"},
    ]
    for body in cases:
        response = await client.post(BASE, headers=staff, json=body)
        assert response.status_code == 422, (body["name"], response.text)
    lone_surrogate = b'{"name": "surrogate", "value": "\\ud800-lone"}'  # JSON escapes decode to no valid text
    response = await client.post(BASE, headers={**staff, "content-type": "application/json"}, content=lone_surrogate)
    assert response.status_code == 422, response.text
    assert (await client.post(BASE, headers=staff, json={"name": "largest", "value": "x" * 65536})).status_code == 201

    secret = (await create(client, staff, "patched")).json()
    for body in ({"value": ""}, {"value": None}, {"expiresAt": past}, {"name": None}, {"id": 5}):
        response = await client.patch(f"{BASE}{secret['id']}/", headers=staff, json=body)
        assert response.status_code == 422, (body, response.text)
    cleared = await client.patch(f"{BASE}{secret['id']}/", headers=staff, json={"expiresAt": None})
    assert cleared.status_code == 200
    assert (await client.get(f"{BASE}not-an-id/", headers=staff)).status_code == 404
    assert (await client.get(f"{BASE}{hashed_id(10**6)}/", headers=staff)).status_code == 404


async def test_patch_rotates_the_value_and_the_mask_keeps_it(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    staff = world["staff_a"].headers
    secret = (await create(client, staff, "rotating")).json()
    assert await revealed(runtime, secret["id"]) == VALUE
    kept = await client.patch(f"{BASE}{secret['id']}/", headers=staff, json={"value": "********"})
    assert kept.status_code == 200
    assert kept.json()["updatedAt"] == secret["updatedAt"]  # nothing changed
    assert await revealed(runtime, secret["id"]) == VALUE
    same = await client.patch(f"{BASE}{secret['id']}/", headers=staff, json={"value": VALUE})
    assert same.json()["updatedAt"] == secret["updatedAt"]
    rotated = await client.patch(f"{BASE}{secret['id']}/", headers=staff, json={"value": "second value"})
    assert rotated.json()["updatedAt"] > secret["updatedAt"]
    assert await revealed(runtime, secret["id"]) == "second value"


async def test_lists_page_with_limit_and_are_complete_without(client: httpx.AsyncClient, world: World) -> None:
    staff = world["staff_a"].headers
    for n in range(5):
        assert (await create(client, staff, f"secret_{n}", tags=["even"] if n % 2 == 0 else [])).status_code == 201
    complete = await client.get(BASE, headers=staff)
    assert [row["name"] for row in complete.json()] == [f"secret_{n}" for n in range(4, -1, -1)]
    assert "link" not in complete.headers
    page = await client.get(BASE, headers=staff, params={"limit": 2})
    assert len(page.json()) == 2
    assert 'rel="next"' in page.headers["link"]
    tagged = await client.get(BASE, headers=staff, params={"tag": "even"})
    assert {row["name"] for row in tagged.json()} == {"secret_0", "secret_2", "secret_4"}
    by_name = await client.get(BASE, headers=staff, params={"name": "Secret 3"})
    assert [row["name"] for row in by_name.json()] == ["secret_3"]


async def revealed(runtime: Runtime, secret_id: int) -> str:
    async with unit_of_work(runtime) as session:
        return await secrets.reveal(session, runtime.cipher, secret_id, now=utcnow())


@pytest.mark.postgres_only
async def test_without_a_key_secret_values_are_a_503(database_url: str, world: World) -> None:
    """An app built on PostgreSQL without SMARTER_CORE_SECRETS_KEYS (not through `serve`, which refuses to
    start): nothing is encrypted with no key, reads of metadata still work."""
    unkeyed = create_app(support.test_settings(database_url, secrets_keys=None))
    async with unkeyed.router.lifespan_context(unkeyed), support.client_for(unkeyed) as http:
        refused = await create(http, world["staff_a"].headers, "unkeyed")
        assert refused.status_code == 503
        assert "SMARTER_CORE_SECRETS_KEYS" in refused.json()["detail"]
        assert (await http.get(BASE, headers=world["staff_a"].headers)).json() == []
