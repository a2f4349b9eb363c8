"""`/api/v1/plugins/`: every route x role, scopes, parts, clones, the cache and the statement budget."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from smarter.models.manifest import Manifest
from smarter.models.plugin import Plugin as SDKPlugin
from smarter.models.sam.plugin import SAMPlugin
from sqlalchemy import event, func, select, update

from app.identifiers import hashed_id
from app.models import PluginDataStatic, PluginMeta, PluginPrompt, PluginSelector, Tag, User
from app.runtime import Runtime
from app.schemas.plugins import PluginCreate, PluginDetail, PluginRead
from app.services import plugins as plugin_service
from app.services import principals
from app.services.base import Page
from app.services.permissions import acting_account
from app.services.plugins.rows import row_cache
from tests.auth.helpers import drain_listener
from tests.support import World, observe_statements, unit_of_work
from tests.support import statements as sent_statements

BASE = "/api/v1/plugins/"
ACTORS = ("superuser", "staff_a", "regular_a", "staff_b", "regular_b")
# Who reads / owns (may change) the plugin each actor created in their own account.
READS = {
    "superuser": set(ACTORS),
    "staff_a": {"superuser", "staff_a", "regular_a"},
    "regular_a": {"superuser", "staff_a", "regular_a"},
    "staff_b": {"superuser", "staff_b", "regular_b"},
    "regular_b": {"superuser", "staff_b", "regular_b"},
}
OWNS = {
    "superuser": set(ACTORS),
    "staff_a": {"staff_a", "regular_a"},
    "regular_a": {"regular_a"},
    "staff_b": {"staff_b", "regular_b"},
    "regular_b": {"regular_b"},
}


def plugin_name(owner: str) -> str:
    return f"p_{owner}"


async def create(client: httpx.AsyncClient, world: World, actor: str, **body: Any) -> dict[str, Any]:
    body.setdefault("name", plugin_name(actor))
    response = await client.post(BASE, json=body, headers=world[actor].headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def seed_plugins(client: httpx.AsyncClient, world: World) -> dict[str, int]:
    """One static plugin per actor, in the actor's own account: {owner: id}."""
    ids = {}
    for actor in ACTORS:
        row = await create(
            client,
            world,
            actor,
            tags=["shared", actor],
            selector={"directive": "search_terms", "searchTerms": ["weather"]},
            data={"description": "Weather facts.", "staticData": {"city": "Lisbon"}},
        )
        ids[actor] = row["id"]
    return ids


async def count_rows(runtime: Runtime, model: type[Any]) -> int:
    async with runtime.sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def settle(runtime: Runtime) -> None:
    """Wait until the listener has heard every invalidation sent so far (see `drain_listener`)."""
    await drain_listener(runtime)


@contextmanager
def database_activity(runtime: Runtime) -> Iterator[dict[str, list[Any]]]:
    """Records every SQL statement (SQLAlchemy's and the driver reads') and every pool checkout while active."""
    seen: dict[str, list[Any]] = {"statements": [], "checkouts": []}

    def on_checkout(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        seen["checkouts"].append(record)

    engine = runtime.engine.sync_engine
    event.listen(engine, "checkout", on_checkout)
    try:
        with observe_statements(runtime, seen["statements"].append):
            yield seen
    finally:
        event.remove(engine, "checkout", on_checkout)


# --- role matrix ---------------------------------------------------------------------------------------------


def _clone_body(owner: str) -> dict[str, Any]:
    return {"name": f"clone_of_{owner}"}


ITEM_ROUTES: list[tuple[str, str, Any, str, int]] = [
    ("GET", "", None, "read", 200),
    ("PATCH", "", {"description": "changed"}, "own", 200),
    ("DELETE", "", None, "own", 204),
    ("POST", "clone/", _clone_body, "read", 201),
    ("GET", "prompt/", None, "read", 200),
    ("PUT", "prompt/", {"temperature": 0.2}, "own", 200),
    ("PATCH", "prompt/", {"maxTokens": 100}, "own", 200),
    ("GET", "selector/", None, "read", 200),
    ("PUT", "selector/", {"directive": "always"}, "own", 200),
    ("GET", "data/", None, "read", 200),
    ("PUT", "data/", {"staticData": {"a": 1}}, "own", 200),
]


def expected_status(actor: str, owner: str, need: str, ok: int) -> int:
    if need == "read":
        return ok if owner in READS[actor] else 404
    if owner in OWNS[actor]:
        return ok
    return 403 if owner in READS[actor] else 404


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize(("method", "suffix", "body", "need", "ok"), ITEM_ROUTES)
async def test_item_routes_by_role(
    client: httpx.AsyncClient, world: World, actor: str, method: str, suffix: str, body: Any, need: str, ok: int
) -> None:
    ids = await seed_plugins(client, world)
    for owner, plugin_id in ids.items():
        payload = body(owner) if callable(body) else body
        response = await client.request(
            method, f"{BASE}{plugin_id}/{suffix}", json=payload, headers=world[actor].headers
        )
        assert response.status_code == expected_status(actor, owner, need, ok), (owner, response.text)
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json"


ANONYMOUS_CALLS = [("GET", ""), ("POST", "")] + [(m, f"{{id}}/{s}") for m, s, *_ in ITEM_ROUTES]


async def test_anonymous_and_bad_keys_are_401_on_every_route(client: httpx.AsyncClient, world: World) -> None:
    ids = await seed_plugins(client, world)
    for method, suffix in ANONYMOUS_CALLS:
        path = BASE + suffix.format(id=ids["staff_a"])
        for headers in ({}, {"Authorization": "Token not-a-key"}, {"Authorization": "Token " + "0" * 64}):
            response = await client.request(method, path, json={"name": "x"}, headers=headers)
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["www-authenticate"] == "Token"


@pytest.mark.parametrize("actor", ACTORS)
async def test_list_read_scope_and_owned_scope(client: httpx.AsyncClient, world: World, actor: str) -> None:
    await seed_plugins(client, world)
    response = await client.get(BASE, headers=world[actor].headers)
    assert response.status_code == 200
    assert {row["name"] for row in response.json()} == {plugin_name(o) for o in READS[actor]}
    owned = await client.get(BASE, params={"scope": "owned"}, headers=world[actor].headers)
    assert owned.status_code == 200
    assert {row["name"] for row in owned.json()} == {plugin_name(o) for o in OWNS[actor]}


async def test_multi_member_reads_both_tenants(client: httpx.AsyncClient, world: World) -> None:
    await seed_plugins(client, world)
    response = await client.get(BASE, headers=world["multi"].headers)
    assert {row["name"] for row in response.json()} == {plugin_name(o) for o in ACTORS}


# --- list ------------------------------------------------------------------------------------------------------


async def test_list_rows_match_the_sdk_model_newest_first(client: httpx.AsyncClient, world: World) -> None:
    ids = await seed_plugins(client, world)
    response = await client.get(BASE, headers=world["superuser"].headers)
    rows = response.json()
    assert [row["id"] for row in rows] == sorted(ids.values(), reverse=True)
    row = next(r for r in rows if r["id"] == ids["regular_a"])
    plugin = SDKPlugin.model_validate(row)
    assert plugin.plugin_class == "static"
    assert plugin.kind == "Plugin"
    assert plugin.user_profile is not None
    assert plugin.user_profile.user is not None
    assert plugin.user_profile.user.username == "regular_a"
    assert plugin.user_profile.user.email == "regular_a@example.com"
    assert plugin.user_profile.account is not None
    assert plugin.user_profile.account.account_number == world.account_a.account_number
    assert row["hashedId"] == hashed_id(row["id"])
    assert row["recordLocator"] == f"pluginmeta-{hashed_id(row['id'])}"
    assert row["tags"] == ["regular_a", "shared"]
    assert "spec" not in row  # the list has flat rows only
    for listed in rows:  # rows are serialised without validation: hold them against the schema
        assert PluginRead.model_validate(listed).model_dump(mode="json") == listed
        detail = (await client.get(f"{BASE}{listed['id']}/", headers=world["superuser"].headers)).json()
        assert {key: detail[key] for key in listed} == listed
        assert PluginDetail.model_validate(detail).model_dump(mode="json") == detail


async def test_list_filters(client: httpx.AsyncClient, world: World) -> None:
    await seed_plugins(client, world)
    await create(client, world, "staff_a", name="sql thing", pluginClass="sql")
    headers = world["superuser"].headers

    async def names(**params: Any) -> set[str]:
        response = await client.get(BASE, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return {row["name"] for row in response.json()}

    assert await names(name="P Staff A") == {"p_staff_a"}  # normalised like every name
    assert await names(tag="staff_b") == {"p_staff_b"}
    assert await names(tag="shared") == {plugin_name(a) for a in ACTORS}
    assert await names(pluginClass="sql") == {"sql_thing"}
    assert await names(accountNumber=world.account_b.account_number) == {"p_staff_b", "p_regular_b"}
    assert await names(tag="nope") == set()
    bad = await client.get(BASE, params={"pluginClass": "wasm"}, headers=headers)
    assert bad.status_code == 422
    bad_scope = await client.get(BASE, params={"scope": "everything"}, headers=headers)
    assert bad_scope.status_code == 422


async def test_list_pages_with_link_header(client: httpx.AsyncClient, world: World) -> None:
    ids = await seed_plugins(client, world)
    headers = world["superuser"].headers
    first = await client.get(BASE, params={"limit": 2}, headers=headers)
    assert [row["id"] for row in first.json()] == sorted(ids.values(), reverse=True)[:2]
    assert 'rel="next"' in first.headers["link"]
    assert "offset=2" in first.headers["link"]
    last = await client.get(BASE, params={"limit": 2, "offset": 4}, headers=headers)
    assert len(last.json()) == 1
    assert "link" not in last.headers
    # The next page keeps the request's filters (and only the new limit and offset).
    filtered = await client.get(BASE, params={"tag": "shared", "offset": 1, "limit": 1}, headers=headers)
    link = filtered.headers["link"]
    assert link.startswith("<http://")
    assert link.endswith('>; rel="next"')
    following = await client.get(link[1 : link.index(">")], headers=headers)
    assert following.status_code == 200
    assert following.request.url.params.multi_items() == [("tag", "shared"), ("limit", "1"), ("offset", "2")]
    assert following.json()[0]["id"] == sorted(ids.values(), reverse=True)[2]


async def test_list_statement_count_does_not_grow_with_rows(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    principal = await principals.authenticate(runtime.reader, runtime.caches, _digest(world, "staff_a"))
    async with unit_of_work(runtime) as session:
        for n in range(101):
            await plugin_service.create_plugin(
                session, principal, PluginCreate(name=f"bulk_{n}", tags=[f"t{n % 7}", "bulk"])
            )
    headers = world["staff_a"].headers
    await client.get(BASE, params={"limit": 1}, headers=headers)  # warm the principal cache

    async def statements(limit: int) -> int:
        with database_activity(runtime) as seen:
            response = await client.get(BASE, params={"limit": limit}, headers=headers)
        assert response.status_code == 200
        assert len(response.json()) == limit
        assert all(row["userProfile"]["user"]["username"] == "staff_a" for row in response.json())
        return len([sql for sql in seen["statements"] if sql not in ("BEGIN", "COMMIT", "ROLLBACK")])

    cold, warm = {}, {}
    for limit in (1, 10, 100):
        row_cache(runtime.caches).clear()  # the lists' rows
        cold[limit] = await statements(limit)
        warm[limit] = await statements(limit)
    # The page's ids, then the rows the cache lacks in one query (owner joined in, tags aggregated per row);
    # once they are cached, the ids alone.
    assert cold == {1: 2, 10: 2, 100: 2}
    assert warm == {1: 1, 10: 1, 100: 1}


def _digest(world: World, actor: str) -> str:
    from app.services import keys

    return keys.digest_of(world[actor].key)


# --- create ----------------------------------------------------------------------------------------------------


async def test_create_normalises_name_and_fills_default_parts(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    row = await create(client, world, "regular_a", name="  My Plugin (v2)! ")
    assert row["name"] == "my_plugin_v2"
    assert row["userProfile"]["user"]["username"] == "regular_a"
    assert row["userProfile"]["account"]["accountNumber"] == world.account_a.account_number
    assert row["spec"]["prompt"] == {
        "provider": "openai",
        "systemRole": "You are a helful assistant.",
        "model": "gpt-4o-mini",
        "temperature": 0.5,
        "maxTokens": 2048,
    }
    assert row["spec"]["selector"] == {"directive": "llm", "searchTerms": None}
    assert row["spec"]["data"] == {"description": "", "staticData": {}, "parameters": None}
    async with runtime.sessionmaker() as session:
        plugin = (await session.execute(select(PluginMeta).where(PluginMeta.id == row["id"]))).scalar_one()
        assert plugin.user_profile_id == world["regular_a"].profile.id
        assert plugin.account_id == world.account_a.id
    for model in (PluginPrompt, PluginSelector, PluginDataStatic):
        assert await count_rows(runtime, model) == 1


async def test_create_with_nested_parts(client: httpx.AsyncClient, world: World) -> None:
    body = {
        "name": "weather",
        "description": "Weather plugin",
        "version": "0.2.0",
        "annotations": [{"smarter.sh/author": "me"}],
        "prompt": {"systemRole": "You know the weather.", "temperature": 0.1, "max_tokens": 300},
        "selector": {"directive": "search_terms", "searchTerms": [" weather ", "forecast"]},
        "data": {
            "description": "Returns the weather.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "metric": {"type": "boolean"}},
                "required": ["city"],
            },
            "staticData": {"city": "Lisbon"},
        },
    }
    response = await client.post(BASE, json=body, headers=world["staff_a"].headers)
    assert response.status_code == 201, response.text
    spec = response.json()["spec"]
    assert spec["prompt"]["maxTokens"] == 300
    assert spec["prompt"]["temperature"] == 0.1
    assert spec["prompt"]["provider"] == "openai"
    assert spec["selector"] == {"directive": "search_terms", "searchTerms": ["weather", "forecast"]}
    assert spec["data"]["parameters"]["properties"]["metric"] == {"type": "boolean"}
    assert response.json()["version"] == "0.2.0"


async def test_create_name_conflicts_per_account(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    await create(client, world, "staff_a", name="Test Plugin")
    again = await client.post(
        BASE,
        json={"name": "test_plugin", "prompt": {"model": "gpt-4o"}, "selector": {"directive": "always"}},
        headers=world["regular_a"].headers,
    )
    assert again.status_code == 409, again.text
    assert again.json()["errors"][0]["loc"] == ["body", "name"]
    # All or nothing: the conflicting create left no parts behind.
    assert await count_rows(runtime, PluginMeta) == 1
    assert await count_rows(runtime, PluginPrompt) == 1
    # Another account may use the name.
    await create(client, world, "staff_b", name="Test Plugin")


async def test_concurrent_creates_of_one_name_give_one_409(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    await client.get(BASE, headers=world["staff_a"].headers)
    responses = await asyncio.gather(
        *(client.post(BASE, json={"name": "race", "tags": ["x"]}, headers=world["staff_a"].headers) for _ in range(4))
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
    assert await count_rows(runtime, PluginMeta) == 1


async def test_create_in_a_named_account(client: httpx.AsyncClient, world: World) -> None:
    multi = world["multi"].headers
    by_body = await client.post(
        BASE, json={"name": "in_b", "accountNumber": world.account_b.account_number}, headers=multi
    )
    assert by_body.status_code == 201
    assert by_body.json()["userProfile"]["account"]["accountNumber"] == world.account_b.account_number
    by_query = await client.post(
        BASE, params={"accountNumber": world.account_b.account_number}, json={"name": "in_b_2"}, headers=multi
    )
    assert by_query.json()["userProfile"]["account"]["accountNumber"] == world.account_b.account_number
    default = await client.post(BASE, json={"name": "in_a"}, headers=multi)
    assert default.json()["userProfile"]["account"]["accountNumber"] == world.account_a.account_number
    foreign = await client.post(
        BASE, json={"name": "nope", "accountNumber": world.account_b.account_number}, headers=world["staff_a"].headers
    )
    assert foreign.status_code == 422


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "pluginClass": "wasm"}, "pluginClass"),
        ({"name": "x", "pluginClass": "sql", "data": {"staticData": {}}}, "data"),
        ({"name": "x", "owner": 1}, "owner"),
        ({"name": "x", "id": 5}, "id"),
        ({"name": "!!!"}, "name"),
        ({"name": "line\nbreak"}, "name"),
        ({"name": "x", "version": "1.0"}, "version"),
        ({"name": "x", "prompt": {"temperature": 1.5}}, "temperature"),
        ({"name": "x", "selector": {"directive": "search_terms"}}, "selector"),
        ({"name": "x", "data": {"parameters": {"properties": {}}}}, "parameters"),
    ],
)
async def test_create_rejects_invalid_fields(
    client: httpx.AsyncClient, world: World, body: dict[str, Any], field: str
) -> None:
    response = await client.post(BASE, json=body, headers=world["staff_a"].headers)
    assert response.status_code == 422, response.text
    assert any(field in [str(p) for p in error["loc"]] for error in response.json()["errors"]), response.json()


async def test_create_bad_json_is_400(client: httpx.AsyncClient, world: World) -> None:
    response = await client.post(
        BASE, content=b"{not json", headers={**world["staff_a"].headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 400


# --- detail ----------------------------------------------------------------------------------------------------


async def test_detail_is_a_manifest_the_sdk_accepts(client: httpx.AsyncClient, world: World) -> None:
    row = await create(
        client,
        world,
        "staff_a",
        name="weather",
        tags=["red"],
        selector={"directive": "search_terms", "searchTerms": ["weather"]},
        data={"description": "d", "staticData": {"city": "Lisbon"}},
    )
    for ident in (row["id"], row["hashedId"]):
        response = await client.get(f"{BASE}{ident}/", headers=world["regular_a"].headers)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        manifest = Manifest.model_validate(body)
        sam = manifest.to_sam()
        assert isinstance(sam, SAMPlugin)
        assert sam.metadata.name == "weather"
        assert sam.metadata.pluginClass == "static"
        assert sam.spec.selector.searchTerms == ["weather"]
        assert sam.spec.data.staticData == {"city": "Lisbon"}
        assert sam.status is not None
        assert sam.status.username == "staff_a"
        assert sam.status.accountNumber == world.account_a.account_number
        assert sam.status.recordLocator == row["recordLocator"]
        SDKPlugin.model_validate(body)  # the flat row half, too
        assert body["kind"] == "Plugin"
        assert body["pluginClass"] == "static"


@pytest.mark.parametrize("bad", ["0", "-1", "abc", "rMTAwMDAwMQ", "99999999999999999999999", "rMHx"])
async def test_detail_unknown_ids_are_404(client: httpx.AsyncClient, world: World, bad: str) -> None:
    response = await client.get(f"{BASE}{bad}/", headers=world["superuser"].headers)
    assert response.status_code == 404


async def test_detail_path_without_trailing_slash(client: httpx.AsyncClient, world: World) -> None:
    row = await create(client, world, "staff_a")
    response = await client.get(f"{BASE}{row['id']}", headers=world["staff_a"].headers)
    assert response.status_code == 200
    assert response.json()["id"] == row["id"]


# --- update / delete -------------------------------------------------------------------------------------------


async def test_patch_metadata(client: httpx.AsyncClient, world: World) -> None:
    row = await create(client, world, "regular_a", tags=["one"])
    await create(client, world, "staff_a", name="taken")
    path = f"{BASE}{row['id']}/"
    headers = world["regular_a"].headers
    response = await client.patch(
        path, json={"name": "New Name", "tags": ["two", "three"], "version": "2.0.0"}, headers=headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "new_name"
    assert sorted(body["tags"]) == ["three", "two"]
    assert body["metadata"]["version"] == "2.0.0"
    assert (await client.patch(path, json={"name": "taken"}, headers=headers)).status_code == 409
    assert (await client.patch(path, json={"pluginClass": "sql"}, headers=headers)).status_code == 422
    assert (await client.patch(path, json={"description": None}, headers=headers)).status_code == 422
    assert (await client.patch(path, json={"prompt": {"model": "x"}}, headers=headers)).status_code == 422


async def test_regular_user_reads_but_cannot_delete_staff_plugin(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    row = await create(client, world, "staff_a")
    path = f"{BASE}{row['id']}/"
    assert (await client.get(path, headers=world["regular_a"].headers)).status_code == 200
    assert (await client.delete(path, headers=world["regular_a"].headers)).status_code == 403
    assert (await client.delete(path, headers=world["staff_b"].headers)).status_code == 404
    assert await count_rows(runtime, PluginMeta) == 1
    assert (await client.delete(path, headers=world["staff_a"].headers)).status_code == 204
    for model in (PluginMeta, PluginPrompt, PluginSelector, PluginDataStatic):
        assert await count_rows(runtime, model) == 0
    assert (await client.get(path, headers=world["staff_a"].headers)).status_code == 404


async def test_platform_plugins_are_readable_not_writable(client: httpx.AsyncClient, world: World) -> None:
    row = await create(client, world, "superuser", name="shared_tool")
    for actor in ("staff_a", "regular_b", "multi"):
        assert (await client.get(f"{BASE}{row['id']}/", headers=world[actor].headers)).status_code == 200
        assert (await client.delete(f"{BASE}{row['id']}/", headers=world[actor].headers)).status_code == 403


# --- clone -----------------------------------------------------------------------------------------------------


async def test_clone_copies_everything_and_belongs_to_the_caller(client: httpx.AsyncClient, world: World) -> None:
    source = await create(
        client,
        world,
        "superuser",
        name="shared_tool",
        tags=["red", "green"],
        description="A tool",
        annotations=[{"k": "v"}],
        prompt={"systemRole": "Be brief.", "temperature": 0.9},
        selector={"directive": "search_terms", "searchTerms": ["tool"]},
        data={"description": "data", "staticData": {"x": [1, 2]}},
    )
    response = await client.post(
        f"{BASE}{source['hashedId']}/clone/", json={"name": "My Copy"}, headers=world["regular_a"].headers
    )
    assert response.status_code == 201, response.text
    clone = response.json()
    assert clone["id"] != source["id"]
    assert clone["name"] == "my_copy"
    assert clone["userProfile"]["user"]["username"] == "regular_a"
    assert clone["userProfile"]["account"]["accountNumber"] == world.account_a.account_number
    assert sorted(clone["tags"]) == sorted(source["tags"])
    for key in ("description", "annotations", "version"):
        assert clone[key] == source[key]
    assert clone["spec"] == source["spec"]
    # Owned by the caller: they may change it.
    patch = await client.patch(
        f"{BASE}{clone['id']}/", json={"description": "mine"}, headers=world["regular_a"].headers
    )
    assert patch.status_code == 200
    again = await client.post(
        f"{BASE}{source['id']}/clone/", json={"name": "my_copy"}, headers=world["regular_a"].headers
    )
    assert again.status_code == 409
    hidden = await client.post(f"{BASE}{clone['id']}/clone/", json={"name": "x"}, headers=world["staff_b"].headers)
    assert hidden.status_code == 404
    invalid = await client.post(f"{BASE}{source['id']}/clone/", json={}, headers=world["staff_b"].headers)
    assert invalid.status_code == 422


# --- parts -----------------------------------------------------------------------------------------------------


async def test_prompt_put_replaces_and_patch_merges(client: httpx.AsyncClient, world: World) -> None:
    row = await create(client, world, "staff_a", prompt={"model": "gpt-4o", "temperature": 0.9, "systemRole": "S"})
    path = f"{BASE}{row['id']}/prompt/"
    headers = world["staff_a"].headers
    got = await client.get(path, headers=headers)
    assert got.status_code == 200
    assert got.json()["model"] == "gpt-4o"
    assert got.json()["pluginId"] == row["id"]
    assert got.json()["recordLocator"].startswith("pluginprompt-")

    patched = await client.patch(path, json={"maxTokens": 111}, headers=headers)
    assert patched.status_code == 200
    assert patched.json()["maxCompletionTokens"] == 111
    assert patched.json()["model"] == "gpt-4o"  # kept
    assert patched.json()["systemRole"] == "S"

    put = await client.put(path, json={"temperature": 0.0}, headers=headers)
    assert put.status_code == 200
    assert put.json() | {"createdAt": None, "updatedAt": None, "id": None, "hashedId": None, "recordLocator": None} == {
        "id": None,
        "hashedId": None,
        "recordLocator": None,
        "createdAt": None,
        "updatedAt": None,
        "pluginId": row["id"],
        "provider": "openai",
        "systemRole": "You are a helful assistant.",
        "model": "gpt-4o-mini",
        "temperature": 0.0,
        "maxCompletionTokens": 2048,
    }
    assert (await client.get(path, headers=headers)).json()["temperature"] == 0.0


@pytest.mark.parametrize(
    "body",
    [
        {"temperature": 1.01},
        {"temperature": -0.1},
        {"maxCompletionTokens": 0},
        {"maxCompletionTokens": 8193},
        {"maxTokens": 10, "maxCompletionTokens": 10},
        {"systemRole": "x" * 32769},
        {"model": ""},
        {"provider": None},
        {"unknown": 1},
    ],
)
async def test_prompt_validation(client: httpx.AsyncClient, world: World, body: dict[str, Any]) -> None:
    row = await create(client, world, "staff_a")
    for method in ("PUT", "PATCH"):
        response = await client.request(
            method, f"{BASE}{row['id']}/prompt/", json=body, headers=world["staff_a"].headers
        )
        assert response.status_code == 422, (method, response.text)


async def test_prompt_limits_are_inclusive(client: httpx.AsyncClient, world: World) -> None:
    row = await create(client, world, "staff_a")
    body = {"temperature": 1.0, "maxCompletionTokens": 8192, "systemRole": "x" * 32768}
    response = await client.put(f"{BASE}{row['id']}/prompt/", json=body, headers=world["staff_a"].headers)
    assert response.status_code == 200, response.text
    low = await client.put(
        f"{BASE}{row['id']}/prompt/", json={"temperature": 0, "max_tokens": 1}, headers=world["staff_a"].headers
    )
    assert low.status_code == 200


async def test_selector_rules(client: httpx.AsyncClient, world: World) -> None:
    row = await create(client, world, "staff_a")
    path = f"{BASE}{row['id']}/selector/"
    headers = world["staff_a"].headers
    for bad in (
        {"directive": "search_terms"},
        {"directive": "search_terms", "searchTerms": []},
        {"directive": "search_terms", "searchTerms": ["  "]},
        {"directive": "always", "searchTerms": ["x"]},
        {"directive": "llm", "searchTerms": []},
        {"directive": "sometimes"},
        {"searchTerms": ["x"]},
    ):
        response = await client.put(path, json=bad, headers=headers)
        assert response.status_code == 422, (bad, response.text)
    ok = await client.put(path, json={"directive": "search_terms", "searchTerms": ["rain", "sun"]}, headers=headers)
    assert ok.status_code == 200
    assert ok.json()["searchTerms"] == ["rain", "sun"]
    always = await client.put(path, json={"directive": "always"}, headers=headers)
    assert always.json()["searchTerms"] is None
    got = await client.get(path, headers=headers)
    assert got.json()["directive"] == "always"
    assert got.json()["searchTerms"] is None


async def test_data_rules(client: httpx.AsyncClient, world: World) -> None:
    row = await create(client, world, "staff_a")
    path = f"{BASE}{row['id']}/data/"
    headers = world["staff_a"].headers
    parameters = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City"},
            "metric": {"type": "boolean", "default": True},
            "days": {"type": ["integer", "null"]},
        },
        "required": ["city"],
    }
    ok = await client.put(
        path, json={"description": "Weather", "parameters": parameters, "staticData": {"a": 1}}, headers=headers
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["parameters"] == parameters
    assert (await client.get(path, headers=headers)).json()["staticData"] == {"a": 1}
    for bad in (
        {"parameters": {"type": "array", "properties": {}}},
        {"parameters": {"type": "object"}},
        {"parameters": {"type": "object", "properties": {"a": {"type": "bool"}}}},
        {"parameters": {"type": "object", "properties": {"a": "string"}}},
        {"parameters": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]}},
        {"parameters": "not an object"},
        {"staticData": [1, 2]},
        {"testValues": []},
    ):
        response = await client.put(path, json=bad, headers=headers)
        assert response.status_code == 422, (bad, response.text)


async def test_data_of_a_plugin_without_its_class_data(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    """An API plugin created without data has none yet (404); static data is not its shape (422)."""
    row = await create(client, world, "staff_a", pluginClass="api")
    assert row["kind"] == "ApiPlugin"
    assert row["spec"].get("data") is None
    assert "apiData" not in row["spec"]
    headers = world["staff_a"].headers
    assert (await client.get(f"{BASE}{row['id']}/data/", headers=headers)).status_code == 404
    put = await client.put(f"{BASE}{row['id']}/data/", json={"staticData": {}}, headers=headers)
    assert put.status_code == 422
    assert await count_rows(runtime, PluginDataStatic) == 0
    # Not even visible to outsiders: 404 comes before 409.
    assert (await client.get(f"{BASE}{row['id']}/data/", headers=world["staff_b"].headers)).status_code == 404


async def test_missing_part_reads_404_and_put_creates_it(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    row = await create(client, world, "staff_a")
    async with unit_of_work(runtime) as session:  # a plugin imported without prompt settings
        prompt = (await session.execute(select(PluginPrompt))).scalar_one()
        await session.delete(prompt)  # the unit of work drops the plugin's snapshot (`cache_rules`)
    headers = world["staff_a"].headers
    assert (await client.get(f"{BASE}{row['id']}/prompt/", headers=headers)).status_code == 404
    detail = await client.get(f"{BASE}{row['id']}/", headers=headers)
    assert detail.json()["spec"]["prompt"] is None
    patched = await client.patch(f"{BASE}{row['id']}/prompt/", json={"model": "gpt-4o"}, headers=headers)
    assert patched.status_code == 200
    assert patched.json()["model"] == "gpt-4o"
    assert patched.json()["temperature"] == 0.5
    assert await count_rows(runtime, PluginPrompt) == 1


# --- cache -----------------------------------------------------------------------------------------------------


async def test_warm_detail_get_does_no_database_io(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    row = await create(client, world, "staff_a")
    await settle(runtime)
    headers = world["regular_a"].headers
    paths = [f"{BASE}{row['id']}/{suffix}" for suffix in ("", "prompt/", "selector/", "data/")]
    for path in paths:  # warms the principal cache, lastUsedAt and the plugin snapshot
        assert (await client.get(path, headers=headers)).status_code == 200
    with database_activity(runtime) as seen:
        for path in paths:
            response = await client.get(path, headers=headers)
            assert response.status_code == 200
    assert seen == {"statements": [], "checkouts": []}


async def test_cache_hit_still_checks_read_scope(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    row = await create(client, world, "staff_a")
    await settle(runtime)
    path = f"{BASE}{row['id']}/"
    assert (await client.get(path, headers=world["staff_a"].headers)).status_code == 200
    await client.get(BASE, headers=world["staff_b"].headers)  # warm staff_b's principal
    with database_activity(runtime) as seen:
        response = await client.get(path, headers=world["staff_b"].headers)
    assert response.status_code == 404
    assert seen["statements"] == []


async def test_every_write_is_visible_on_the_next_get(client: httpx.AsyncClient, world: World) -> None:
    row = await create(client, world, "staff_a")
    path = f"{BASE}{row['id']}/"
    headers = world["staff_a"].headers

    async def detail() -> dict[str, Any]:
        response = await client.get(path, headers=headers)
        assert response.status_code == 200
        return response.json()  # type: ignore[no-any-return]

    assert (await detail())["description"] == ""
    assert (await listed(client, headers, row["id"]))["description"] == ""  # the list's row is cached too
    await client.patch(path, json={"description": "patched", "tags": ["new"]}, headers=headers)
    body = await detail()
    assert body["description"] == "patched"
    assert body["tags"] == ["new"]
    in_list = await listed(client, headers, row["id"])
    assert in_list == {key: body[key] for key in in_list}
    await client.patch(f"{path}prompt/", json={"model": "gpt-4o"}, headers=headers)
    assert (await detail())["spec"]["prompt"]["model"] == "gpt-4o"
    assert (await client.get(f"{path}prompt/", headers=headers)).json()["model"] == "gpt-4o"
    await client.put(f"{path}selector/", json={"directive": "always"}, headers=headers)
    assert (await detail())["spec"]["selector"]["directive"] == "always"
    await client.put(f"{path}data/", json={"staticData": {"v": 2}}, headers=headers)
    assert (await detail())["spec"]["data"]["staticData"] == {"v": 2}
    assert (await client.get(f"{path}data/", headers=headers)).json()["staticData"] == {"v": 2}
    await client.delete(path, headers=headers)
    assert (await client.get(path, headers=headers)).status_code == 404
    assert row["id"] not in {item["id"] for item in (await client.get(BASE, headers=headers)).json()}


async def listed(client: httpx.AsyncClient, headers: dict[str, str], plugin_id: int) -> dict[str, Any]:
    """The plugin's row in the list (the first page holds every plugin of these tests)."""
    response = await client.get(BASE, headers=headers)
    assert response.status_code == 200
    return next(item for item in response.json() if item["id"] == plugin_id)  # type: ignore[no-any-return]


async def test_owner_changes_invalidate_through_tags(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    row = await create(client, world, "staff_a")
    path = f"{BASE}{row['id']}/"
    headers = world["staff_a"].headers
    assert (await client.get(path, headers=headers)).json()["userProfile"]["user"]["email"] == "staff_a@example.com"
    assert (await listed(client, headers, row["id"]))["userProfile"]["user"]["email"] == "staff_a@example.com"
    user_id = world["staff_a"].user.id
    async with unit_of_work(runtime) as session:  # what a user update does
        await session.execute(update(User).where(User.id == user_id).values(email="new@example.com").returning(User.id))
    body = (await client.get(path, headers=headers)).json()
    assert body["userProfile"]["user"]["email"] == "new@example.com"
    assert (await listed(client, headers, row["id"]))["userProfile"]["user"]["email"] == "new@example.com"


async def test_service_list_uses_the_read_scope(world: World, runtime: Runtime, client: httpx.AsyncClient) -> None:
    await seed_plugins(client, world)
    principal = await principals.authenticate(runtime.reader, runtime.caches, _digest(world, "regular_b"))
    async with unit_of_work(runtime) as session:
        assert (await acting_account(session, principal)).account_id == world.account_b.id
    body, more = await plugin_service.list_plugins(runtime.reader, runtime.caches, principal, Page(limit=2))
    rows = json.loads(body)
    assert [row["name"] for row in rows] == ["p_regular_b", "p_staff_b"]
    assert more is True


# --- OpenAPI ---------------------------------------------------------------------------------------------------


async def test_openapi_declares_every_status(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    operations = {
        (method, path): op
        for path, item in document["paths"].items()
        if path.startswith(BASE)
        for method, op in item.items()
    }
    assert len(operations) == 17  # CRUD and parts (13), the runtime: selection, tool, call, test
    for (method, path), op in operations.items():
        assert op["summary"], (method, path)
        assert op["description"], (method, path)
        statuses = set(op["responses"])
        assert {"401", "503"} <= statuses, (method, path)
        if "{id}" in path:
            assert "404" in statuses, (method, path)
        if method in ("post", "put", "patch"):
            assert {"400", "413", "422"} <= statuses, (method, path)
        if method in ("put", "patch", "delete") or path.endswith("clone/"):
            assert "403" in statuses, (method, path)
        assert op["operationId"].startswith("plugins-")
        for status, declared in op["responses"].items():
            if int(status) >= 400:
                schema = declared["content"]["application/problem+json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path, status)


# --- writes: tags and statements ---------------------------------------------------------------------------


async def test_create_links_known_and_new_tags_alike(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    headers = world["staff_a"].headers
    await create(client, world, "staff_a", name="first", tags=["known"])
    body = await create(client, world, "staff_a", name="second", tags=["new_b", "known", "new_a", "known"])
    assert body["tags"] == ["known", "new_a", "new_b"]
    detail = (await client.get(f"{BASE}{body['id']}/", headers=headers)).json()
    assert detail["tags"] == ["known", "new_a", "new_b"]
    for tag in ("known", "new_a", "new_b"):
        listed = (await client.get(BASE, params={"tag": tag, "limit": 10}, headers=headers)).json()
        assert body["id"] in [row["id"] for row in listed]
    assert await count_rows(runtime, Tag) == 3


async def test_concurrent_creates_with_one_new_tag_all_link_it(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    headers = world["staff_a"].headers
    await create(client, world, "staff_a", name="warm", tags=["known"])
    responses = await asyncio.gather(
        *(
            client.post(BASE, json={"name": f"racer_{n}", "tags": ["brand_new", "known"]}, headers=headers)
            for n in range(4)
        )
    )
    assert [r.status_code for r in responses] == [201] * 4
    for response in responses:
        detail = (await client.get(f"{BASE}{response.json()['id']}/", headers=headers)).json()
        assert detail["tags"] == ["brand_new", "known"]
    assert await count_rows(runtime, Tag) == 2


@pytest.mark.postgres_only
async def test_a_create_with_known_tags_is_one_statement(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    """The plugin, its parts and its tag links in one INSERT that returns the view (issue 15: writes 3x faster)."""
    body = {
        "tags": ["one", "two"],
        "pluginClass": "static",
        "prompt": {"temperature": 0.1},
        "selector": {"directive": "search_terms", "searchTerms": ["x"]},
        "data": {"description": "d", "staticData": {"k": 1}},
    }
    await create(client, world, "staff_a", name="warm", **body)  # the tags exist, the principal is cached
    with sent_statements(runtime) as seen:
        created = await create(client, world, "staff_a", name="measured", **body)
    # After the commit, one NOTIFY tells the other processes (their account indexes of the plugin runtime).
    writes = [sql for sql in seen if not sql.startswith("SELECT pg_notify")]
    assert len(writes) == 1, seen
    assert len(seen) - len(writes) <= 1, seen
    assert created["tags"] == ["one", "two"]
    assert created["spec"]["data"]["staticData"] == {"k": 1}
