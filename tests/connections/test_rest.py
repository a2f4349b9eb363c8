"""`/api/v1/connections/{sql,api}/`: CRUD, scopes, secret names, the rules of each field, 409s."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.models import PluginDataApi, PluginDataSql, PluginMeta
from app.runtime import Runtime
from tests.connections.support import API, SECRET_VALUE, SQL, create, secret
from tests.support import World, unit_of_work

PG = {"dbEngine": "django.db.backends.postgresql", "hostname": "db.example.com", "database": "sales"}


async def test_sql_crud(client: httpx.AsyncClient, world: World) -> None:
    staff = world["staff_a"].headers
    await secret(client, staff, "db_password")
    body = await create(
        client, SQL, staff, name="Sales DB", password="DB Password", username="reader", tags=["db"], **PG
    )
    assert body["name"] == "sales_db"
    assert body["kind"] == "SqlConnection"
    assert body["port"] == 5432  # the engine's default
    assert body["password"] == "db_password"  # the secret's (normalised) name
    assert body["recordLocator"] == f"sqlconnection-{body['hashedId']}"
    assert body["userProfile"] == {
        "user": {"username": "staff_a", "email": "staff_a@example.com"},
        "account": {"accountNumber": world.account_a.account_number},
    }
    assert body["tags"] == ["db"]
    assert (body["timeout"], body["poolSize"], body["maxOverflow"]) == (30, 5, 10)
    assert SECRET_VALUE not in str(body)

    for ref in (body["id"], body["hashedId"]):
        got = await client.get(f"{SQL}{ref}/", headers=staff)
        assert got.status_code == 200
        assert got.json() == body
    assert [row["name"] for row in (await client.get(SQL, headers=staff)).json()] == ["sales_db"]
    assert [row["id"] for row in (await client.get(f"{SQL}?name=Sales DB", headers=staff)).json()] == [body["id"]]
    assert (await client.get(f"{SQL}?name=other", headers=staff)).json() == []
    assert [row["id"] for row in (await client.get(f"{SQL}?tag=db", headers=staff)).json()] == [body["id"]]
    assert [row["id"] for row in (await client.get(f"{SQL}?tag=%20db%20", headers=staff)).json()] == [body["id"]]
    assert (await client.get(f"{SQL}?tag=other", headers=staff)).json() == []

    retagged = await client.patch(f"{SQL}{body['id']}/", headers=staff, json={"tags": ["sales", "db"]})
    assert retagged.status_code == 200, retagged.text
    assert sorted(retagged.json()["tags"]) == ["db", "sales"]
    assert retagged.json()["updatedAt"] > body["updatedAt"]  # a tag-only change modifies the connection

    patched = await client.patch(f"{SQL}{body['id']}/", headers=staff, json={"timeout": 5, "password": None})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["timeout"], patched.json()["password"]) == (5, None)

    # MySQL: the old engine's default port follows the engine.
    switched = await client.patch(f"{SQL}{body['id']}/", headers=staff, json={"dbEngine": "mysql"})
    assert switched.json()["port"] == 3306

    replaced = await client.put(f"{SQL}{body['id']}/", headers=staff, json={"name": "sales_db", **PG, "port": 6543})
    assert replaced.status_code == 200, replaced.text
    assert (replaced.json()["port"], replaced.json()["timeout"], replaced.json()["tags"]) == (6543, 30, [])

    assert (await client.delete(f"{SQL}{body['id']}/", headers=staff)).status_code == 204
    assert (await client.get(f"{SQL}{body['id']}/", headers=staff)).status_code == 404


async def test_api_crud_and_ssl_key_is_write_only(client: httpx.AsyncClient, world: World) -> None:
    staff = world["staff_a"].headers
    await secret(client, staff, "weather_token")
    body = await create(
        client,
        API,
        staff,
        name="weather",
        baseUrl="https://api.example.com/v1/",
        authMethod="token",
        apiKey="weather_token",
    )
    assert (body["kind"], body["authMethod"], body["apiKey"], body["timeout"]) == (
        "ApiConnection",
        "token",
        "weather_token",
        30,
    )
    assert body["recordLocator"].startswith("apiconnection-")
    cleared = await client.patch(f"{API}{body['id']}/", headers=staff, json={"authMethod": "none", "apiKey": None})
    assert cleared.status_code == 200, cleared.text
    # authMethod token without a key: 422 naming apiKey.
    missing = await client.patch(f"{API}{body['id']}/", headers=staff, json={"authMethod": "basic"})
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["loc"][-1] == "apiKey"

    key = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----"
    sql = await create(client, SQL, staff, name="tls", useSsl=True, sslKey=key, **PG)
    assert sql["sslKey"] == "********"
    assert key not in str(sql)
    kept = await client.patch(f"{SQL}{sql['id']}/", headers=staff, json={"sslKey": "********", "timeout": 3})
    assert kept.status_code == 200
    assert kept.json()["sslKey"] == "********"
    mask_on_create = await client.post(SQL, headers=staff, json={"name": "tls2", "sslKey": "********", **PG})
    assert mask_on_create.status_code == 422


@pytest.mark.parametrize(
    ("base", "body", "field", "words"),
    [
        (SQL, {**PG, "dbEngine": "django.db.backends.oracle"}, "dbEngine", "django.db.backends.postgresql"),
        (SQL, {**PG, "authenticationMethod": "ssh"}, "authenticationMethod", "tcpip"),
        (SQL, {**PG, "timeout": 0}, "timeout", ""),
        (SQL, {**PG, "timeout": 31}, "timeout", ""),
        (SQL, {**PG, "port": 70000}, "port", ""),
        (SQL, {**PG, "hostname": ""}, "", "hostname is required"),
        (SQL, {**PG, "password": "nope"}, "password", "No secret named 'nope'"),
        (SQL, {**PG, "proxyPassword": "nope"}, "proxyPassword", "No secret named 'nope'"),
        (SQL, {**PG, "surprise": 1}, "surprise", ""),
        (API, {"baseUrl": "ftp://example.com/"}, "baseUrl", "http"),
        (API, {"baseUrl": "/relative/path"}, "baseUrl", "http"),
        (API, {"baseUrl": "https://example.com/", "authMethod": "oauth"}, "authMethod", "api_key"),
        (API, {"baseUrl": "https://example.com/", "authMethod": "token", "apiKey": "nope"}, "apiKey", "nope"),
        (API, {"baseUrl": "https://example.com/", "timeout": 60}, "timeout", ""),
    ],
)
async def test_invalid_fields_are_422_naming_the_field(
    client: httpx.AsyncClient, world: World, base: str, body: dict[str, Any], field: str, words: str
) -> None:
    response = await client.post(base, headers=world["staff_a"].headers, json={"name": "bad", **body})
    assert response.status_code == 422, response.text
    problem = response.json()
    if field:
        assert field in [str(error["loc"][-1]) for error in problem["errors"]], problem
    assert words in response.text


async def test_short_engine_forms_and_sqlite(client: httpx.AsyncClient, world: World) -> None:
    staff = world["staff_a"].headers
    pg = await create(client, SQL, staff, name="pg", dbEngine="postgresql", hostname="h", database="d")
    my = await create(client, SQL, staff, name="my", dbEngine="mysql", hostname="h", database="d")
    lite = await create(client, SQL, staff, name="lite", dbEngine="sqlite", database="var/lookup.sqlite3")
    assert (pg["port"], my["port"], lite["port"], lite["hostname"]) == (5432, 3306, None, "")


async def test_secrets_of_other_accounts_and_other_members_are_unknown(client: httpx.AsyncClient, world: World) -> None:
    await secret(client, world["staff_b"].headers, "b_password")
    await secret(client, world["staff_a"].headers, "staff_password")
    cross = await client.post(SQL, headers=world["staff_a"].headers, json={"name": "x", "password": "b_password", **PG})
    assert cross.status_code == 422
    assert cross.json()["errors"][0]["loc"][-1] == "password"
    # A regular member may not point a connection (and its calls) at a secret of another member.
    member = await client.post(
        SQL, headers=world["regular_a"].headers, json={"name": "x", "password": "staff_password", **PG}
    )
    assert member.status_code == 422
    own = await create(client, SQL, world["staff_a"].headers, name="x", password="staff_password", **PG)
    # Naming another tenant's secret on update is refused too.
    patched = await client.patch(
        f"{SQL}{own['id']}/", headers=world["staff_a"].headers, json={"password": "b_password"}
    )
    assert patched.status_code == 422


async def test_scopes(client: httpx.AsyncClient, world: World) -> None:
    """Members of the owning account and superusers read; the ownership scope writes; others get 404."""
    row = await create(client, SQL, world["regular_a"].headers, name="mine", **PG)
    path = f"{SQL}{row['id']}/"
    for actor in ("superuser", "staff_a", "regular_a", "multi"):
        assert (await client.get(path, headers=world[actor].headers)).status_code == 200, actor
    for actor in ("staff_b", "regular_b"):
        assert (await client.get(path, headers=world[actor].headers)).status_code == 404, actor
        assert (await client.patch(path, headers=world[actor].headers, json={"timeout": 3})).status_code == 404
        assert (await client.delete(path, headers=world[actor].headers)).status_code == 404
        assert (await client.post(f"{path}test/", headers=world[actor].headers)).status_code == 404
        assert (await client.get(SQL, headers=world[actor].headers)).json() == []
    assert (await client.patch(path, headers=world["multi"].headers, json={"timeout": 3})).status_code == 403
    assert (await client.delete(path, headers=world["multi"].headers)).status_code == 403
    assert (await client.patch(path, headers=world["staff_a"].headers, json={"timeout": 3})).status_code == 200
    # The platform's connections are not everyone's (unlike its plugins).
    platform = await create(client, API, world["superuser"].headers, name="platform_api", baseUrl="https://x.example/")
    assert (await client.get(f"{API}{platform['id']}/", headers=world["staff_a"].headers)).status_code == 404
    assert (await client.get(f"{API}{platform['id']}/", headers=world["superuser"].headers)).status_code == 200
    # A connection is owned by a profile: as for plugins, a superuser without one in the account gets a 422.
    there = await client.post(
        f"{SQL}?accountNumber={world.account_b.account_number}",
        headers=world["superuser"].headers,
        json={"name": "for_b", **PG},
    )
    assert there.status_code == 422
    assert "no profile" in there.text
    outsider = await client.post(
        SQL, headers=world["staff_a"].headers, json={"name": "y", "accountNumber": world.account_b.account_number, **PG}
    )
    assert outsider.status_code == 422


async def test_names_unique_per_account_and_kind(client: httpx.AsyncClient, world: World) -> None:
    staff = world["staff_a"].headers
    await create(client, SQL, staff, name="shared", **PG)
    again = await client.post(SQL, headers=staff, json={"name": "Shared", **PG})
    assert again.status_code == 409
    assert "already exists" in again.json()["detail"]
    await create(client, API, staff, name="shared", baseUrl="https://example.com/")  # another kind
    await create(client, SQL, world["staff_b"].headers, name="shared", **PG)  # another account
    other = await create(client, SQL, staff, name="other", **PG)
    renamed = await client.patch(f"{SQL}{other['id']}/", headers=staff, json={"name": "shared"})
    assert renamed.status_code == 409


async def plugin_using(runtime: Runtime, world: World, kind: str, connection_id: int, name: str) -> None:
    async with unit_of_work(runtime) as session:
        actor = world["staff_a"]
        plugin = PluginMeta(
            name=name, plugin_class=kind, user_profile_id=actor.profile.id, account_id=world.account_a.id
        )
        session.add(plugin)
        await session.flush()
        if kind == "sql":
            session.add(PluginDataSql(plugin_id=plugin.id, connection_id=connection_id, sql_query="SELECT 1"))
        else:
            session.add(PluginDataApi(plugin_id=plugin.id, connection_id=connection_id, endpoint="/x"))


async def test_delete_while_used_is_409_naming_the_plugins(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    staff = world["staff_a"].headers
    sql = await create(client, SQL, staff, name="used_sql", **PG)
    api = await create(client, API, staff, name="used_api", baseUrl="https://example.com/")
    await plugin_using(runtime, world, "sql", sql["id"], "sales_report")
    await plugin_using(runtime, world, "api", api["id"], "weather_now")
    for base, row, plugin in ((SQL, sql, "sales_report"), (API, api, "weather_now")):
        refused = await client.delete(f"{base}{row['id']}/", headers=staff)
        assert refused.status_code == 409
        assert plugin in refused.json()["detail"]
        assert (await client.get(f"{base}{row['id']}/", headers=staff)).status_code == 200


async def test_bad_ids_and_limits(client: httpx.AsyncClient, world: World) -> None:
    staff = world["staff_a"].headers
    for path in (f"{SQL}nope/", f"{API}0/", f"{SQL}999/", f"{API}rMTAwMDk5OQx/"):
        assert (await client.get(path, headers=staff)).status_code == 404
    for index in range(3):
        await create(client, API, staff, name=f"api_{index}", baseUrl="https://example.com/")
    page = await client.get(f"{API}?limit=2", headers=staff)
    assert len(page.json()) == 2
    assert 'rel="next"' in page.headers["link"]
    assert len((await client.get(API, headers=staff)).json()) == 3
    assert "link" not in (await client.get(API, headers=staff)).headers
