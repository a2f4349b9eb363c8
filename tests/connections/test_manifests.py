"""The `SqlConnection` and `ApiConnection` kinds through `/api/v1/cli/`: apply (idempotent), get, describe with
status and dependencies, delete (409 while used), tenancy by name, examples and JSON Schemas."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from smarter.models.sam.apiconnection import SAMApiConnection
from smarter.models.sam.sqlconnection import SAMSqlConnection

from app.runtime import Runtime
from app.schemas.manifests.connection import api_example, sql_example
from tests.connections.support import SECRET_VALUE, secret
from tests.connections.test_rest import plugin_using
from tests.support import World

CLI = "/api/v1/cli"
SAM = {"SqlConnection": SAMSqlConnection, "ApiConnection": SAMApiConnection}
EXAMPLES = {"SqlConnection": sql_example, "ApiConnection": api_example}


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def apply(client: httpx.AsyncClient, headers: dict[str, str], document: dict[str, Any]) -> httpx.Response:
    return await client.post(f"{CLI}/apply/", json=document, headers=headers)


async def describe(client: httpx.AsyncClient, headers: dict[str, str], kind: str, name: str) -> httpx.Response:
    return await client.post(f"{CLI}/describe/{kind}/", params={"name": name}, headers=headers)


@pytest.mark.parametrize("kind", ["SqlConnection", "ApiConnection"])
async def test_apply_get_describe_delete(client: httpx.AsyncClient, world: World, kind: str) -> None:
    staff = world["staff_a"].headers
    example = EXAMPLES[kind]()
    SAM[kind].model_validate(example)  # the SDK's own model accepts the example
    first = ok(await apply(client, staff, example))
    assert first["message"] == f"{kind} {example['metadata']['name']} applied successfully"
    again = ok(await apply(client, staff, example))
    assert again["data"] == first["data"]  # idempotent: nothing changed

    name = example["metadata"]["name"]
    described = ok(await describe(client, staff, kind, name))["data"]
    typed = SAM[kind].model_validate(described)
    assert typed.status is not None
    assert typed.status.account_number == world.account_a.account_number
    assert typed.status.username == "staff_a"
    assert typed.status.recordLocator.startswith(kind.lower() + "-")
    assert typed.status.dependencies == []
    # describe -> apply round-trips unchanged.
    ok(await apply(client, staff, described))
    assert ok(await describe(client, staff, kind, name))["data"]["spec"] == described["spec"]

    table = ok(await client.post(f"{CLI}/get/{kind}/", headers=staff))["data"]
    assert [item["name"] for item in table["data"]["items"]] == [name]
    assert table["metadata"]["count"] == 1
    row = table["data"]["items"][0]  # the one timestamp spelling of every `get` table (`app.text.iso_utc`)
    assert row["createdAt"].endswith("Z")
    assert row["updatedAt"].endswith("Z")
    assert (
        ok(await client.post(f"{CLI}/get/{kind}s/", params={"name": "other"}, headers=staff))["data"]["data"]["items"]
        == []
    )

    changed = copy.deepcopy(example)
    changed["spec"]["connection"]["timeout"] = 3
    ok(await apply(client, staff, changed))
    assert ok(await describe(client, staff, kind, name))["data"]["spec"]["connection"]["timeout"] == 3

    deleted = ok(await client.post(f"{CLI}/delete/{kind}/", params={"name": name}, headers=staff))
    assert deleted["message"] == f"{kind} {name} deleted successfully"
    assert (await describe(client, staff, kind, name)).status_code == 404


@pytest.mark.parametrize("kind", ["SqlConnection", "ApiConnection"])
async def test_examples_validate_and_schemas_are_served(client: httpx.AsyncClient, world: World, kind: str) -> None:
    headers = world["regular_a"].headers
    example = ok(await client.get(f"{CLI}/example-manifest/{kind}/", headers=headers))["data"]
    SAM[kind].model_validate(example)
    assert ok(await client.post(f"{CLI}/validate/", json=example, headers=headers))["data"] == {
        "valid": True,
        "errors": [],
    }
    schema = ok(await client.post(f"{CLI}/json-schema/{kind}/", headers=headers))["data"]
    assert {"apiVersion", "kind", "metadata", "spec"} <= set(schema["properties"])


async def test_credentials_are_secret_names_of_the_account(client: httpx.AsyncClient, world: World) -> None:
    staff = world["staff_a"].headers
    await secret(client, world["staff_b"].headers, "b_password")
    document = sql_example()
    document["spec"]["connection"]["password"] = "b_password"
    refused = await apply(client, staff, document)
    assert refused.status_code == 422
    assert "password" in refused.json()["error"]["description"]
    await secret(client, staff, "a_password")
    document["spec"]["connection"]["password"] = "A Password"
    applied = ok(await apply(client, staff, document))["data"]
    assert applied["spec"]["connection"]["password"] == "a_password"
    assert SECRET_VALUE not in str(applied)
    bad_engine = sql_example()
    bad_engine["spec"]["connection"]["dbEngine"] = "django.db.backends.oracle"
    invalid = await apply(client, staff, bad_engine)
    assert invalid.status_code == 422
    assert "django.db.backends.postgresql" in invalid.json()["error"]["description"]


async def test_other_tenants_connections_are_404_by_name(client: httpx.AsyncClient, world: World) -> None:
    ok(await apply(client, world["staff_a"].headers, api_example()))
    name = api_example()["metadata"]["name"]
    for actor in ("staff_b", "regular_b"):
        headers = world[actor].headers
        assert (await describe(client, headers, "ApiConnection", name)).status_code == 404
        deleted = await client.post(f"{CLI}/delete/ApiConnection/", params={"name": name}, headers=headers)
        assert deleted.status_code == 404
        table = ok(await client.post(f"{CLI}/get/ApiConnection/", headers=headers))["data"]
        assert table["data"]["items"] == []
    # Applying the same name in B creates B's own connection; A's is untouched.
    other = api_example()
    other["spec"]["connection"]["baseUrl"] = "https://b.example.com/"
    assert ok(await apply(client, world["staff_b"].headers, other))["data"]["spec"]["connection"]["baseUrl"] == (
        "https://b.example.com/"
    )
    mine = ok(await describe(client, world["staff_a"].headers, "ApiConnection", name))["data"]
    assert mine["spec"]["connection"]["baseUrl"] == "https://api.example.com/v1/"
    # A member who does not own it: readable, not writable.
    assert (await describe(client, world["regular_a"].headers, "ApiConnection", name)).status_code == 200
    assert (await apply(client, world["regular_a"].headers, api_example())).status_code == 403
    refused = await client.post(
        f"{CLI}/delete/ApiConnection/", params={"name": name}, headers=world["regular_a"].headers
    )
    assert refused.status_code == 403


async def test_dependencies_and_delete_while_used(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    staff = world["staff_a"].headers
    described = ok(await apply(client, staff, sql_example()))["data"]
    name = described["metadata"]["name"]
    rows = (await client.get("/api/v1/connections/sql/", headers=staff)).json()
    connection_id = rows[0]["id"]
    await plugin_using(runtime, world, "sql", connection_id, "sales_report")
    status = ok(await describe(client, staff, "SqlConnection", name))["data"]["status"]
    assert status["dependencies"] == [{"kind": "SqlPlugin", "name": "sales_report"}]
    refused = await client.post(f"{CLI}/delete/SqlConnection/", params={"name": name}, headers=staff)
    assert refused.status_code == 409
    assert "sales_report" in refused.json()["error"]["description"]
