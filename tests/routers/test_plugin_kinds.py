"""SQL and API plugins over REST and the manifest API: their data, connection, validation, tenancy and cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from smarter.models.manifest import Manifest
from smarter.models.sam.apiplugin import SAMApiPlugin
from smarter.models.sam.sqlplugin import SAMSqlPlugin
from sqlalchemy import func, select

from app.models import PluginDataApi, PluginDataSql, PluginMeta
from app.runtime import Runtime
from tests.plugin_kinds import api_data, connection, sql_data
from tests.support import World

BASE = "/api/v1/plugins/"
CLI = "/api/v1/cli/"
DATA = Path(__file__).parent.parent / "manifests" / "data"
KINDS = {"sql": ("SqlPlugin", "sqlData", sql_data), "api": ("ApiPlugin", "apiData", api_data)}


def document(file: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DATA / file).read_text(encoding="utf-8"))
    return loaded


@pytest.fixture
async def connections(runtime: Runtime, world: World) -> dict[str, int]:
    """In account A: SQL `crm_database`, API `weather_api`; in account B: SQL `b_database`, API `b_api`."""
    return {
        "crm_database": await connection(runtime, "sql", world["staff_a"].profile, "crm_database"),
        "weather_api": await connection(runtime, "api", world["staff_a"].profile, "weather_api"),
        "b_database": await connection(runtime, "sql", world["staff_b"].profile, "b_database"),
        "b_api": await connection(runtime, "api", world["staff_b"].profile, "b_api"),
    }


def body_of(plugin_class: str, name: str = "connected", **changes: Any) -> dict[str, Any]:
    _, field, data = KINDS[plugin_class]
    return {
        "name": name,
        "pluginClass": plugin_class,
        "connection": "crm_database" if plugin_class == "sql" else "weather_api",
        field: data(),
        **changes,
    }


async def count(runtime: Runtime, model: type[Any]) -> int:
    async with runtime.sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


# --- REST ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("plugin_class", ["sql", "api"])
async def test_rest_create_detail_data_and_list(
    client: httpx.AsyncClient, world: World, connections: dict[str, int], plugin_class: str
) -> None:
    kind, field, data = KINDS[plugin_class]
    headers = world["regular_a"].headers  # any member may create plugins, with the account's connections
    created = await client.post(BASE, json=body_of(plugin_class), headers=headers)
    assert created.status_code == 201, created.text
    row = created.json()
    assert (row["kind"], row["pluginClass"]) == (kind, plugin_class)
    assert row["spec"]["connection"] == body_of(plugin_class)["connection"]
    assert row["spec"][field] == data()
    assert "data" not in row["spec"]

    detail = (await client.get(f"{BASE}{row['id']}/", headers=headers)).json()
    assert detail["spec"] == row["spec"]
    typed = Manifest.model_validate(detail).to_sam()
    assert isinstance(typed, SAMSqlPlugin if plugin_class == "sql" else SAMApiPlugin)
    assert typed.spec.connection == body_of(plugin_class)["connection"]

    own = (await client.get(f"{BASE}{row['id']}/data/", headers=headers)).json()
    assert own["connection"] == body_of(plugin_class)["connection"]
    assert own["pluginId"] == row["id"]
    assert {key: own[key] for key in data()} == data()

    listed = (await client.get(BASE, params={"pluginClass": plugin_class}, headers=headers)).json()
    assert [(r["name"], r["kind"]) for r in listed] == [("connected", kind)]


@pytest.mark.parametrize("plugin_class", ["sql", "api"])
async def test_put_data_replaces_and_invalidates_the_snapshot(
    client: httpx.AsyncClient, world: World, runtime: Runtime, connections: dict[str, int], plugin_class: str
) -> None:
    _, field, data = KINDS[plugin_class]
    headers = world["staff_a"].headers
    row = (await client.post(BASE, json=body_of(plugin_class), headers=headers)).json()
    path = f"{BASE}{row['id']}/data/"
    assert (await client.get(path, headers=headers)).json()["limit"] == data()["limit"]  # cached now
    await client.get(f"{BASE}{row['id']}/", headers=headers)

    changed = {**data(limit=1000, description="Changed."), "connection": body_of(plugin_class)["connection"]}
    put = await client.put(path, json=changed, headers=headers)
    assert put.status_code == 200, put.text
    assert put.json()["limit"] == 1000
    assert (await client.get(path, headers=headers)).json()["description"] == "Changed."
    detail = (await client.get(f"{BASE}{row['id']}/", headers=headers)).json()
    assert detail["spec"][field]["limit"] == 1000
    assert detail["spec"][field]["description"] == "Changed."
    # The same body again changes nothing.
    again = await client.put(path, json=changed, headers=headers)
    assert again.json()["updatedAt"] == put.json()["updatedAt"]
    assert await count(runtime, PluginDataSql if plugin_class == "sql" else PluginDataApi) == 1


async def test_a_plugin_created_without_data_gets_it_by_put(
    client: httpx.AsyncClient, world: World, connections: dict[str, int]
) -> None:
    headers = world["staff_a"].headers
    row = (await client.post(BASE, json={"name": "later", "pluginClass": "sql"}, headers=headers)).json()
    path = f"{BASE}{row['id']}/data/"
    assert (await client.get(path, headers=headers)).status_code == 404
    put = await client.put(path, json={**sql_data(), "connection": "crm_database"}, headers=headers)
    assert put.status_code == 200, put.text
    assert (await client.get(path, headers=headers)).json()["sqlQuery"] == sql_data()["sqlQuery"]
    detail = (await client.get(f"{BASE}{row['id']}/", headers=headers)).json()
    assert detail["spec"]["sqlData"]["sqlQuery"] == sql_data()["sqlQuery"]


@pytest.mark.parametrize(
    ("plugin_class", "changes", "field"),
    [
        ("sql", {"sqlQuery": "SELECT * FROM t WHERE a = {b}"}, "sqlQuery"),
        ("sql", {"sqlQuery": ""}, "sqlQuery"),
        ("sql", {"parameters": [{"name": "not an identifier", "type": "string"}]}, "name"),
        ("sql", {"parameters": [{"name": "1st", "type": "string"}]}, "name"),
        ("sql", {"parameters": [{"name": "country", "type": "text"}]}, "type"),
        ("sql", {"parameters": [{"name": "country"}, {"name": "country"}]}, "parameters"),
        ("sql", {"testValues": [{"name": "city", "value": "x"}]}, "testValues"),
        ("sql", {"limit": 0}, "limit"),
        ("sql", {"limit": 1001}, "limit"),
        ("sql", {"unknown": 1}, "unknown"),
        ("api", {"endpoint": "/v1/{town}"}, "endpoint"),
        ("api", {"endpoint": "http://169.254.169.254/latest"}, "endpoint"),
        ("api", {"endpoint": "@evil.example/x"}, "endpoint"),
        ("api", {"urlParams": [{"key": "q", "value": "{query}"}]}, "urlParams"),
        ("api", {"headers": [{"name": "X-A", "value": "{token}"}]}, "headers"),
        ("api", {"headers": [{"name": "Bad Header", "value": "x"}]}, "name"),
        ("api", {"headers": [{"name": "X-A", "value": "a\r\nInjected: 1"}]}, "value"),
        ("api", {"headers": [{"name": "X-A", "value": "São"}]}, "value"),
        ("api", {"body": {"nested": [{"q": "{query}"}]}}, "body"),
        ("api", {"method": "TRACE"}, "method"),
        ("api", {"limit": 0}, "limit"),
        ("api", {"testValues": [{"name": "nope", "value": 1}]}, "testValues"),
    ],
)
async def test_data_validation_names_the_field(
    client: httpx.AsyncClient,
    world: World,
    runtime: Runtime,
    connections: dict[str, int],
    plugin_class: str,
    changes: dict[str, Any],
    field: str,
) -> None:
    _, data_field, data = KINDS[plugin_class]
    headers = world["staff_a"].headers
    response = await client.post(BASE, json=body_of(plugin_class, **{data_field: data(**changes)}), headers=headers)
    assert response.status_code == 422, response.text
    assert any(field in error["loc"] for error in response.json()["errors"]), response.text
    assert await count(runtime, PluginMeta) == 0
    # PUT {id}/data/ judges the same body the same way.
    row = (await client.post(BASE, json=body_of(plugin_class), headers=headers)).json()
    put = await client.put(f"{BASE}{row['id']}/data/", json={**data(**changes), "connection": "x"}, headers=headers)
    assert put.status_code == 422, put.text
    assert any(field in error["loc"] for error in put.json()["errors"]), put.text


async def test_placeholders_in_braces_only_when_identifiers(
    client: httpx.AsyncClient, world: World, connections: dict[str, int]
) -> None:
    """`'{}'` and `{"a": 1}` in SQL text are text, not placeholders; a method is case-insensitive."""
    headers = world["staff_a"].headers
    query = """SELECT '{}' AS a, '{"k": 1}' AS b, {country} AS c"""
    created = await client.post(BASE, json=body_of("sql", sqlData=sql_data(sqlQuery=query)), headers=headers)
    assert created.status_code == 201, created.text
    api = body_of("api", name="lower", apiData=api_data(method="post", body={"city": "{city}", "n": [1, "{unit}"]}))
    created = await client.post(BASE, json=api, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["spec"]["apiData"]["method"] == "POST"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (body_of("sql", connection="weather_api"), "connection"),  # an ApiConnection
        (body_of("api", connection="crm_database"), "connection"),  # a SqlConnection
        (body_of("sql", connection="b_database"), "connection"),  # another account's: not found
        (body_of("api", connection="b_api"), "connection"),
        (body_of("sql", connection="nothing_here"), "connection"),
        ({"name": "x", "pluginClass": "sql", "sqlData": sql_data()}, "connection"),
        ({"name": "x", "pluginClass": "sql", "connection": "crm_database"}, "sqlData"),
        ({"name": "x", "pluginClass": "static", "connection": "crm_database"}, "connection"),
        ({"name": "x", "pluginClass": "static", "sqlData": sql_data()}, "sqlData"),
        ({"name": "x", "pluginClass": "api", "connection": "weather_api", "sqlData": sql_data()}, "sqlData"),
        ({"name": "x", "pluginClass": "sql", "connection": "crm_database", "data": {}}, "data"),
    ],
)
async def test_connection_rules(
    client: httpx.AsyncClient,
    world: World,
    runtime: Runtime,
    connections: dict[str, int],
    body: dict[str, Any],
    field: str,
) -> None:
    response = await client.post(BASE, json=body, headers=world["staff_a"].headers)
    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["errors"]] == [["body", field]]
    assert "b_database" not in response.json()["detail"] or "No SqlConnection" in response.json()["detail"]
    assert await count(runtime, PluginMeta) == 0


async def test_another_accounts_connection_is_never_used(
    client: httpx.AsyncClient, world: World, runtime: Runtime, connections: dict[str, int]
) -> None:
    """Through PUT too; and a superuser creating in account A cannot point at B's connection."""
    headers = world["staff_a"].headers
    row = (await client.post(BASE, json=body_of("sql"), headers=headers)).json()
    put = await client.put(f"{BASE}{row['id']}/data/", json={**sql_data(), "connection": "b_database"}, headers=headers)
    assert put.status_code == 422
    assert "No SqlConnection named 'b_database'" in put.json()["detail"]
    body = body_of("sql", name="su", connection="b_database", accountNumber=world.account_a.account_number)
    assert (await client.post(BASE, json=body, headers=world["superuser"].headers)).status_code == 422
    async with runtime.sessionmaker() as session:
        used = (await session.execute(select(PluginDataSql.connection_id))).scalars().all()
    assert used == [connections["crm_database"]]


async def test_data_routes_follow_the_plugin_scopes(
    client: httpx.AsyncClient, world: World, connections: dict[str, int]
) -> None:
    row = (await client.post(BASE, json=body_of("api"), headers=world["staff_a"].headers)).json()
    path = f"{BASE}{row['id']}/data/"
    put = {**api_data(), "connection": "weather_api"}
    assert (await client.get(path, headers=world["regular_a"].headers)).status_code == 200
    assert (await client.put(path, json=put, headers=world["regular_a"].headers)).status_code == 403
    for outsider in ("staff_b", "regular_b"):
        assert (await client.get(path, headers=world[outsider].headers)).status_code == 404
        # 404 before the body is judged, whatever it holds.
        assert (await client.put(path, json={"junk": 1}, headers=world[outsider].headers)).status_code == 404


async def test_clone_keeps_the_data_and_the_accounts_connection(
    client: httpx.AsyncClient, world: World, runtime: Runtime, connections: dict[str, int]
) -> None:
    headers = world["staff_a"].headers
    row = (await client.post(BASE, json=body_of("sql"), headers=headers)).json()
    clone = await client.post(f"{BASE}{row['id']}/clone/", json={"name": "copy"}, headers=headers)
    assert clone.status_code == 201, clone.text
    assert clone.json()["spec"]["sqlData"] == row["spec"]["sqlData"]
    assert clone.json()["spec"]["connection"] == "crm_database"
    # The superuser clones it into account B, which has no `crm_database`: refused, never B using A's.
    other = await client.post(
        f"{BASE}{row['id']}/clone/",
        json={"name": "copy", "accountNumber": world.account_b.account_number},
        headers=world["superuser"].headers,
    )
    assert other.status_code in (422, 404), other.text
    assert await count(runtime, PluginDataSql) == 2


# --- manifests ---------------------------------------------------------------------------------------------------


async def cli(client: httpx.AsyncClient, world: World, actor: str, verb: str, kind: str, **params: Any) -> Any:
    return await client.post(f"{CLI}{verb}/{kind}/", params=params, headers=world[actor].headers)


@pytest.mark.parametrize(("file", "kind"), [("sql-plugin.yaml", "SqlPlugin"), ("api-plugin.yaml", "ApiPlugin")])
async def test_manifest_apply_describe_get_delete(
    client: httpx.AsyncClient, world: World, runtime: Runtime, connections: dict[str, int], file: str, kind: str
) -> None:
    text = (DATA / file).read_text(encoding="utf-8")
    name = document(file)["metadata"]["name"]
    headers = {**world["staff_a"].headers, "Content-Type": "application/x-yaml"}
    applied = await client.post(f"{CLI}apply/", content=text, headers=headers)
    assert applied.status_code == 200, applied.text
    assert applied.json()["message"] == f"{kind} {name} applied successfully"

    described = await cli(client, world, "regular_a", "describe", kind, name=name)
    assert described.status_code == 200, described.text
    manifest = described.json()["data"]
    assert manifest["kind"] == kind
    typed = Manifest.model_validate(manifest).to_sam()
    assert isinstance(typed, SAMSqlPlugin if kind == "SqlPlugin" else SAMApiPlugin)
    expected = document(file)["spec"]
    field = "sqlData" if kind == "SqlPlugin" else "apiData"
    assert manifest["spec"]["connection"] == expected["connection"]
    assert {k: v for k, v in manifest["spec"][field].items() if v is not None} == expected[field]
    assert manifest["status"]["accountNumber"] == world.account_a.account_number

    # describe -> apply round-trips unchanged (nothing written: `modified` stays).
    again = await client.post(f"{CLI}apply/", json={**manifest, "status": None}, headers=world["staff_a"].headers)
    assert again.status_code == 200, again.text
    assert (await cli(client, world, "staff_a", "describe", kind, name=name)).json()["data"] == manifest

    table = (await cli(client, world, "staff_a", "get", kind)).json()["data"]
    assert [item["name"] for item in table["data"]["items"]] == [name]
    assert table["kind"] == kind
    # The other plugin kinds' tables do not list it; outsiders do not see it.
    assert (await cli(client, world, "staff_a", "get", "Plugin")).json()["data"]["data"]["items"] == []
    assert (await cli(client, world, "staff_b", "describe", kind, name=name)).status_code == 404
    assert (await cli(client, world, "staff_b", "delete", kind, name=name)).status_code == 404
    assert (await cli(client, world, "staff_a", "describe", "Plugin", name=name)).status_code == 404
    assert (await cli(client, world, "regular_a", "delete", kind, name=name)).status_code == 403

    deleted = await cli(client, world, "staff_a", "delete", kind, name=name)
    assert deleted.status_code == 200, deleted.text
    assert await count(runtime, PluginMeta) == 0


async def test_manifest_changes_are_applied_and_connection_checked(
    client: httpx.AsyncClient, world: World, connections: dict[str, int]
) -> None:
    manifest = document("sql-plugin.yaml")
    headers = world["staff_a"].headers
    assert (await client.post(f"{CLI}apply/", json=manifest, headers=headers)).status_code == 200
    manifest["spec"]["sqlData"]["limit"] = 500
    assert (await client.post(f"{CLI}apply/", json=manifest, headers=headers)).status_code == 200
    described = (await cli(client, world, "staff_a", "describe", "SqlPlugin", name="customers_by_country")).json()
    assert described["data"]["spec"]["sqlData"]["limit"] == 500

    for bad in ("b_database", "weather_api", "missing"):
        manifest["spec"]["connection"] = bad
        response = await client.post(f"{CLI}apply/", json=manifest, headers=headers)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["errorClass"]
    manifest["spec"]["connection"] = "crm_database"
    manifest["spec"]["sqlData"]["sqlQuery"] = "SELECT {nope}"
    assert (await client.post(f"{CLI}apply/", json=manifest, headers=headers)).status_code == 422
    # A static plugin's name cannot be taken over by another kind.
    static = {**document("api-plugin.yaml")}
    static["metadata"] = {**static["metadata"], "name": "customers_by_country"}
    assert (await client.post(f"{CLI}apply/", json=static, headers=headers)).status_code == 409


async def test_example_manifests_apply_once_their_connections_exist(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    headers = world["staff_a"].headers
    await connection(runtime, "sql", world["staff_a"].profile, "example_sql_connection")
    await connection(runtime, "api", world["staff_a"].profile, "example_api_connection")
    for kind, model in (("SqlPlugin", SAMSqlPlugin), ("ApiPlugin", SAMApiPlugin)):
        example = (await client.post(f"{CLI}example-manifest/{kind}/", headers=headers)).json()["data"]
        assert isinstance(Manifest.model_validate(example).to_sam(), model)
        validated = (await client.post(f"{CLI}validate/", json=example, headers=headers)).json()["data"]
        assert validated == {"valid": True, "errors": []}
        applied = await client.post(f"{CLI}apply/", json=example, headers=headers)
        assert applied.status_code == 200, applied.text
        schema = (await client.post(f"{CLI}json-schema/{kind}/", headers=headers)).json()["data"]
        assert {"apiVersion", "kind", "metadata", "spec"} <= set(schema["properties"])
