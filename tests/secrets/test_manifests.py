"""The `Secret` manifest kind over `/api/v1/cli/`: apply, get, describe (masked), the mask round trip,
delete (409 while used), tenancy by name, example manifest, and the SDK's own model of what describe returns."""

from __future__ import annotations

from typing import Any

import httpx
from smarter.models.sam.secret import SAMSecret
from sqlalchemy import select

from app.models import Secret, SqlConnection
from app.models.base import utcnow
from app.runtime import Runtime
from app.services.secrets import reveal
from tests.support import World, unit_of_work

CLI = "/api/v1/cli"
VALUE = "manifest-s3cret-value"


def manifest(name: str, value: str = VALUE, **config: Any) -> dict[str, Any]:
    return {
        "apiVersion": "smarter.sh/v1",
        "kind": "Secret",
        "metadata": {"name": name, "description": "a secret", "version": "1.0.0", "tags": ["db"]},
        "spec": {"config": {"value": value, **config}},
    }


async def value_of(runtime: Runtime, name: str) -> str:
    async with unit_of_work(runtime) as session:
        secret_id = (await session.execute(select(Secret.id).where(Secret.name == name))).scalar_one()
        return await reveal(session, runtime.cipher, secret_id, now=utcnow())


async def test_apply_describe_round_trip_keeps_the_value(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    staff = world["staff_a"].headers
    applied = await client.post(f"{CLI}/apply/", json=manifest("Warehouse Password"), headers=staff)
    assert applied.status_code == 200, applied.text
    assert applied.json()["message"] == "Secret warehouse_password applied successfully"
    assert VALUE not in applied.text

    described = await client.post(f"{CLI}/describe/secret/", params={"name": "warehouse_password"}, headers=staff)
    assert described.status_code == 200, described.text
    data = described.json()["data"]
    assert VALUE not in described.text
    assert data["spec"]["config"] == {"value": "********", "expiration_date": None}
    status = data["status"]
    assert status["accountNumber"] == world.account_a.account_number
    assert status["username"] == "staff_a"
    assert status["recordLocator"].startswith("secret-")
    assert status["dependencies"] == []
    assert "last_accessed" in status
    SAMSecret.model_validate(data)  # the SDK's own model of the kind

    again = await client.post(f"{CLI}/apply/", json=data, headers=staff)  # the mask, with the status
    assert again.status_code == 200, again.text
    assert await value_of(runtime, "warehouse_password") == VALUE
    after = (await client.post(f"{CLI}/describe/secret/", params={"name": "warehouse_password"}, headers=staff)).json()
    assert after["data"]["spec"] == data["spec"]
    assert after["data"]["status"]["modified"] == status["modified"]  # nothing changed

    rotated = await client.post(f"{CLI}/apply/", json=manifest("warehouse_password", "n3w-value"), headers=staff)
    assert rotated.status_code == 200
    assert await value_of(runtime, "warehouse_password") == "n3w-value"

    table = await client.post(f"{CLI}/get/secrets/", headers=staff)
    assert table.status_code == 200
    items = table.json()["data"]["data"]["items"]
    assert [item["name"] for item in items] == ["warehouse_password"]
    assert "n3w-value" not in table.text
    # The one timestamp spelling of every `get` table (`app.text.iso_utc`): UTC with a `Z`.
    assert items[0]["lastAccessed"].endswith("Z"), items[0]


async def test_mask_on_create_and_bad_values_are_refused(client: httpx.AsyncClient, world: World) -> None:
    staff = world["staff_a"].headers
    masked = await client.post(f"{CLI}/apply/", json=manifest("fresh", "********"), headers=staff)
    assert masked.status_code == 422
    assert "mask" in masked.json()["error"]["description"]
    past = await client.post(
        f"{CLI}/apply/", json=manifest("old", expiration_date="2001-01-01T00:00:00Z"), headers=staff
    )
    assert past.status_code == 422
    empty = await client.post(f"{CLI}/apply/", json=manifest("empty", ""), headers=staff)
    assert empty.status_code == 422
    huge = await client.post(f"{CLI}/apply/", json=manifest("huge", "é" * 40000), headers=staff)  # 80 000 bytes
    assert huge.status_code == 422


async def test_other_tenants_secret_is_not_found_by_name(client: httpx.AsyncClient, world: World) -> None:
    applied = await client.post(f"{CLI}/apply/", json=manifest("shared_name"), headers=world["staff_a"].headers)
    assert applied.status_code == 200
    for actor in ("staff_b", "regular_b", "regular_a"):
        headers = world[actor].headers
        for command in ("describe", "delete"):
            response = await client.post(f"{CLI}/{command}/secret/", params={"name": "shared_name"}, headers=headers)
            assert response.status_code == 404, (actor, command, response.text)
        table = await client.post(f"{CLI}/get/secret/", headers=headers)
        assert table.json()["data"]["data"]["items"] == []
    # The same name in another account is another secret.
    other = await client.post(f"{CLI}/apply/", json=manifest("shared_name"), headers=world["staff_b"].headers)
    assert other.status_code == 200
    assert other.json()["data"]["status"]["accountNumber"] == world.account_b.account_number


async def test_delete_is_refused_while_a_connection_uses_it(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    staff = world["staff_a"].headers
    assert (await client.post(f"{CLI}/apply/", json=manifest("db_pw"), headers=staff)).status_code == 200
    async with unit_of_work(runtime) as session:
        secret = (await session.execute(select(Secret).where(Secret.name == "db_pw"))).scalar_one()
        session.add(
            SqlConnection(
                name="warehouse",
                db_engine="django.db.backends.postgresql",
                hostname="db.example.com",
                database="warehouse",
                username="reader",
                password_secret_id=secret.id,
                user_profile_id=secret.user_profile_id,
                account_id=secret.account_id,
            )
        )
    described = await client.post(f"{CLI}/describe/secret/", params={"name": "db_pw"}, headers=staff)
    assert described.json()["data"]["status"]["dependencies"] == [{"kind": "SqlConnection", "name": "warehouse"}]
    refused = await client.post(f"{CLI}/delete/secret/", params={"name": "db_pw"}, headers=staff)
    assert refused.status_code == 409
    assert "SqlConnection warehouse" in refused.json()["error"]["description"]
    rest = await client.delete(
        f"/api/v1/secrets/{described.json()['data']['status']['recordLocator'][7:]}/", headers=staff
    )
    assert rest.status_code == 409
    assert "warehouse" in rest.json()["detail"]


async def test_example_manifest_validates_and_applies(client: httpx.AsyncClient, world: World) -> None:
    staff = world["staff_a"].headers
    example = (await client.post(f"{CLI}/example-manifest/secret/", headers=staff)).json()["data"]
    SAMSecret.model_validate(example)
    assert (await client.post(f"{CLI}/validate/", json=example, headers=staff)).json()["data"]["valid"] is True
    assert (await client.post(f"{CLI}/apply/", json=example, headers=staff)).status_code == 200
    kinds = (await client.post(f"{CLI}/resources/", headers=staff)).json()["data"]
    assert "Secret" in {kind["APIKind"] for kind in kinds}
