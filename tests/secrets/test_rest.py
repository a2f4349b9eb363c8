"""`/api/v1/secrets/`: CRUD, the ownership scope, 409s, the value never shown, and what is stored."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import text

from app.models.base import utcnow
from app.runtime import Runtime
from tests.support import World

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
