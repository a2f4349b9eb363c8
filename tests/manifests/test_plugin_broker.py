"""The `Plugin` manifest broker: apply (idempotent), describe, get, delete, and the protocol routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import ValidationError
from smarter.models.manifest import Manifest, ManifestList
from smarter.models.sam.plugin import SAMPlugin
from sqlalchemy import func, select

from app.caching.rules import PLUGIN_TABLE_CACHE
from app.errors import BadRequest, Conflict, Forbidden, NotFound
from app.models import PluginDataStatic, PluginMeta, PluginPrompt, PluginSelector, Tag
from app.runtime import Runtime
from app.schemas.manifests.plugin import PluginManifest
from app.services import keys, principals
from app.services.manifests import protocol, registry
from app.services.manifests.base import BrokerContext
from app.services.manifests.plugin import PluginBroker
from tests.support import World, unit_of_work

# Verbatim copy of the original's apps/plugin/manifest/brokers/tests/data/static-plugin.yaml.
STATIC_PLUGIN_YAML = (Path(__file__).parent / "data" / "static-plugin.yaml").read_text(encoding="utf-8")

BROKER = PluginBroker()
PLUGIN_ROWS = (PluginMeta, PluginPrompt, PluginSelector, PluginDataStatic)


def verbatim(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(STATIC_PLUGIN_YAML)
    document["metadata"].update(changes)
    return document


def manifest_of(document: dict[str, Any]) -> PluginManifest:
    return PluginManifest.model_validate(document)


@asynccontextmanager
async def broker_context(
    runtime: Runtime, world: World, actor: str, account_number: str | None = None
) -> AsyncIterator[BrokerContext]:
    """A unit of work acting as `actor` (committed at the end, like a request)."""
    principal = await principals.authenticate(runtime.reader, runtime.caches, keys.digest_of(world[actor].key))
    async with unit_of_work(runtime) as session:
        yield await protocol.broker_context(
            session,
            principal,
            runtime.settings,
            account_number=account_number,
            reader=runtime.reader,
            caches=runtime.caches,
        )


async def apply(runtime: Runtime, world: World, actor: str, document: dict[str, Any]) -> Any:
    async with broker_context(runtime, world, actor) as ctx:
        return await BROKER.apply(ctx, manifest_of(document))


async def counts(runtime: Runtime) -> dict[str, int]:
    async with runtime.sessionmaker() as session:
        return {
            model.__name__: int((await session.execute(select(func.count()).select_from(model))).scalar_one())
            for model in PLUGIN_ROWS
        }


async def describe(runtime: Runtime, world: World, actor: str, name: str) -> dict[str, Any]:
    async with broker_context(runtime, world, actor) as ctx:
        return await BROKER.describe(ctx, name)


# --- apply -----------------------------------------------------------------------------------------------------


async def test_registered_under_every_spelling() -> None:
    for segment in ("Plugin", "plugins", "PLUGIN", "plugin"):
        assert registry.resolve(segment).kind == "Plugin"


async def test_apply_verbatim_manifest_twice_is_idempotent(world: World, runtime: Runtime) -> None:
    first = await apply(runtime, world, "staff_a", verbatim())
    assert first.created is True
    assert first.name == "test_plugin"
    assert await counts(runtime) == {m.__name__: 1 for m in PLUGIN_ROWS}
    async with runtime.sessionmaker() as session:
        before = (await session.execute(select(PluginMeta.updated_at))).scalar_one()

    second = await apply(runtime, world, "staff_a", verbatim())
    assert second.created is False
    assert second.data == first.data  # nothing changed, not even updated_at / modified
    assert await counts(runtime) == {m.__name__: 1 for m in PLUGIN_ROWS}
    async with runtime.sessionmaker() as session:
        plugin = (await session.execute(select(PluginMeta))).scalar_one()
        assert plugin.updated_at == before
        assert plugin.user_profile_id == world["staff_a"].profile.id
        assert plugin.account_id == world.account_a.id
        prompt = (await session.execute(select(PluginPrompt))).scalar_one()
        selector = (await session.execute(select(PluginSelector))).scalar_one()
        data = (await session.execute(select(PluginDataStatic))).scalar_one()
        tags = set((await session.execute(select(Tag.name))).scalars())
    assert plugin.plugin_class == "static"
    assert plugin.version == "0.2.0"
    assert plugin.annotations[0] == {"smarter.sh/plugin/author": "Your Name"}
    assert tags == {"red", "green", "blue"}
    assert prompt.max_completion_tokens == 256
    assert prompt.temperature == 0.0
    assert prompt.provider == "openai"
    assert prompt.model == "gpt-4o-mini"
    assert prompt.system_role.startswith("Your job is to provide helpful technical information")
    assert selector.directive == "search_terms"
    assert selector.search_terms == [
        "example function calling configuration",
        "Example configuration",
        "example function calling",
    ]
    assert data.description.startswith("an example plugin")
    assert data.static_data is not None
    assert data.static_data["platformProvider"] == "OpenAI"
    assert data.static_data["links"][0] == {"documentation": "https://platform.openai.com/docs/guides/function-calling"}


async def test_apply_updates_every_part(world: World, runtime: Runtime) -> None:
    await apply(runtime, world, "staff_a", verbatim())
    document = verbatim(description="changed", tags=["red"], version="0.3.0")
    document["spec"]["prompt"]["maxTokens"] = 512
    document["spec"]["selector"] = {"directive": "always"}
    document["spec"]["data"]["staticData"] = {"v": 2}
    updated = await apply(runtime, world, "staff_a", document)
    assert updated.created is False
    spec = updated.data["spec"]
    assert spec["prompt"]["maxTokens"] == 512
    assert spec["selector"] == {"directive": "always", "searchTerms": None}
    assert spec["data"]["staticData"] == {"v": 2}
    assert updated.data["metadata"]["tags"] == ["red"]
    assert updated.data["metadata"]["description"] == "changed"
    assert await counts(runtime) == {m.__name__: 1 for m in PLUGIN_ROWS}


async def test_apply_describe_round_trip(world: World, runtime: Runtime) -> None:
    await apply(runtime, world, "staff_a", verbatim())
    described = await describe(runtime, world, "staff_a", "test_plugin")
    again = await apply(runtime, world, "staff_a", described)  # a status section is accepted and ignored
    assert again.created is False
    assert again.data == described


async def test_apply_needs_ownership_of_an_existing_plugin(world: World, runtime: Runtime) -> None:
    await apply(runtime, world, "staff_a", verbatim())
    with pytest.raises(Forbidden):
        await apply(runtime, world, "regular_a", verbatim(description="mine now"))
    # Staff own every plugin of their account.
    await apply(runtime, world, "regular_a", verbatim(name="regulars"))
    assert (await apply(runtime, world, "staff_a", verbatim(name="regulars", description="x"))).created is False


async def test_apply_never_writes_outside_the_acting_account(world: World, runtime: Runtime) -> None:
    await apply(runtime, world, "superuser", verbatim(description="platform"))
    # Same name from a tenant: a new plugin in the tenant's account, the platform's is untouched.
    created = await apply(runtime, world, "staff_b", verbatim(description="tenant b"))
    assert created.created is True
    assert created.data["status"]["accountNumber"] == world.account_b.account_number
    platform = await describe(runtime, world, "superuser", "test_plugin")
    assert platform["metadata"]["description"] == "platform"
    assert (await counts(runtime))["PluginMeta"] == 2


async def test_apply_in_a_named_account(world: World, runtime: Runtime) -> None:
    async with broker_context(runtime, world, "multi", world.account_b.account_number) as ctx:
        result = await BROKER.apply(ctx, manifest_of(verbatim()))
    assert result.data["status"]["accountNumber"] == world.account_b.account_number
    assert result.data["status"]["username"] == "multi"


async def test_apply_over_a_non_static_plugin_is_409(world: World, runtime: Runtime, client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/plugins/", json={"name": "test_plugin", "pluginClass": "sql"}, headers=world["staff_a"].headers
    )
    assert response.status_code == 201
    with pytest.raises(Conflict):
        await apply(runtime, world, "staff_a", verbatim())


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("metadata", "pluginClass"), "sql"),
        (("kind",), "SqlPlugin"),
        (("apiVersion",), "smarter.sh/v2"),
        (("metadata", "name"), "!!!"),
        (("metadata", "version"), "1.0"),
        (("spec", "selector", "searchTerms"), []),
        (("spec", "selector", "directive"), "always"),  # with the file's searchTerms: forbidden
        (("spec", "prompt", "temperature"), 1.5),
        (("spec", "prompt", "maxTokens"), 0),
        (("spec", "prompt", "maxTokens"), 9000),
        (("spec", "prompt", "systemRole"), "x" * 32769),
        (("spec", "data", "parameters"), {"type": "string"}),
        (("spec", "data", "unknown"), 1),
    ],
)
async def test_invalid_manifests_are_refused(path: tuple[str, ...], value: Any) -> None:
    document = verbatim()
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValidationError):
        manifest_of(document)


async def test_manifest_accepts_boolean_parameters_and_missing_search_terms_for_llm() -> None:
    document = verbatim()
    document["spec"]["selector"] = {"directive": "llm"}
    document["spec"]["data"]["parameters"] = {
        "type": "object",
        "properties": {"verbose": {"type": "boolean", "description": "More detail."}},
        "required": ["verbose"],
    }
    manifest = manifest_of(document)
    assert manifest.spec.selector.search_terms is None
    assert manifest.spec.data.parameters is not None


# --- describe / get --------------------------------------------------------------------------------------------


async def test_describe_validates_with_the_sdk(world: World, runtime: Runtime) -> None:
    await apply(runtime, world, "staff_a", verbatim())
    described = await describe(runtime, world, "regular_a", "test_plugin")
    sam = Manifest.model_validate(described).to_sam()
    assert isinstance(sam, SAMPlugin)
    SAMPlugin.model_validate(described)
    assert sam.metadata.name == "test_plugin"
    assert sam.metadata.tags is not None
    assert sorted(sam.metadata.tags) == ["blue", "green", "red"]
    assert sam.spec.prompt.maxTokens == 256
    assert sam.spec.selector.searchTerms is not None
    assert len(sam.spec.selector.searchTerms) == 3
    assert sam.status is not None
    assert sam.status.username == "staff_a"
    assert sam.status.accountNumber == world.account_a.account_number
    assert sam.status.recordLocator.startswith("pluginmeta-r")
    assert sam.status.dependencies == []


async def test_describe_is_the_rest_detail(world: World, runtime: Runtime, client: httpx.AsyncClient) -> None:
    await apply(runtime, world, "staff_a", verbatim())
    described = await describe(runtime, world, "staff_a", "Test Plugin")  # names are normalised
    rows = (await client.get("/api/v1/plugins/", headers=world["staff_a"].headers)).json()
    detail = (await client.get(f"/api/v1/plugins/{rows[0]['id']}/", headers=world["staff_a"].headers)).json()
    assert {key: detail[key] for key in described} == described


async def test_name_resolution_acting_account_then_platform(world: World, runtime: Runtime) -> None:
    await apply(runtime, world, "superuser", verbatim(description="platform"))
    await apply(runtime, world, "staff_a", verbatim(description="tenant a"))
    assert (await describe(runtime, world, "regular_a", "test_plugin"))["metadata"]["description"] == "tenant a"
    assert (await describe(runtime, world, "regular_b", "test_plugin"))["metadata"]["description"] == "platform"
    await apply(runtime, world, "staff_a", verbatim(name="only_in_a"))
    with pytest.raises(NotFound):
        await describe(runtime, world, "staff_b", "only_in_a")


async def test_get_lists_the_read_scope_filtered_by_name(world: World, runtime: Runtime) -> None:
    await apply(runtime, world, "superuser", verbatim(name="shared"))
    await apply(runtime, world, "staff_a", verbatim(name="a_one"))
    await apply(runtime, world, "regular_a", verbatim(name="a_two"))
    await apply(runtime, world, "staff_b", verbatim(name="b_one"))
    async with broker_context(runtime, world, "regular_a") as ctx:
        rows = await BROKER.get(ctx, None)
        named = await BROKER.get(ctx, "A One")
        hidden = await BROKER.get(ctx, "b_one")
    assert [row["name"] for row in rows] == ["a_two", "a_one", "shared"]  # newest first
    assert [row["name"] for row in named] == ["a_one"]
    assert hidden == []
    titles = {column.name for column in BROKER.columns}
    assert set(rows[0]) == titles
    assert rows[0]["email"] == "regular_a@example.com"
    assert rows[0]["createdAt"].endswith("Z")
    assert rows[0]["pluginClass"] == "static"
    listing = ManifestList.model_validate(
        {
            "kind": "Plugin",
            "metadata": {"count": len(rows)},
            "data": {"titles": [{"name": c.name, "type": c.type} for c in BROKER.columns], "items": rows},
        }
    )
    assert listing.names == ["a_two", "a_one", "shared"]


async def test_get_shows_every_write_at_once(world: World, runtime: Runtime, client: httpx.AsyncClient) -> None:
    """The table comes from the plugin snapshots: an apply, a REST change and an owner's new email all show."""
    headers = world["staff_a"].headers

    async def table() -> dict[str, dict[str, Any]]:
        response = await client.post("/api/v1/cli/get/plugins/", headers=headers)
        assert response.status_code == 200, response.text
        return {row["name"]: row for row in response.json()["data"]["data"]["items"]}

    created = await apply(runtime, world, "staff_a", verbatim(name="live"))
    assert (await table())["live"]["description"] == created.data["metadata"]["description"]
    await apply(runtime, world, "staff_a", verbatim(name="live", description="second"))
    assert (await table())["live"]["description"] == "second"
    plugin_id = (await client.get("/api/v1/plugins/", params={"name": "live"}, headers=headers)).json()[0]["id"]
    patched = await client.patch(f"/api/v1/plugins/{plugin_id}/", json={"version": "9.0.0"}, headers=headers)
    assert patched.status_code == 200
    row = (await table())["live"]
    assert row["version"] == "9.0.0"
    assert row["updatedAt"] == patched.json()["updatedAt"].replace("+00:00", "Z")
    me = await client.patch(
        f"/api/v1/accounts/users/{world['staff_a'].user.id}/", json={"email": "renamed@example.com"}, headers=headers
    )
    assert me.status_code == 200, me.text
    assert (await table())["live"]["email"] == "renamed@example.com"
    await apply(runtime, world, "staff_a", verbatim(name="later"))
    assert list(await table()) == ["later", "live"]


async def test_get_tables_are_kept_per_read_scope_until_a_plugin_is_written(
    world: World, runtime: Runtime, client: httpx.AsyncClient
) -> None:
    """A table is built once per read scope and filters; any plugin write, a delete too, makes the next get
    build it anew, and one tenant's table never answers another's get."""

    async def names(user: str, name: str | None = None) -> list[str]:
        params = {} if name is None else {"name": name}
        response = await client.post("/api/v1/cli/get/plugins/", params=params, headers=world[user].headers)
        assert response.status_code == 200, response.text
        return [row["name"] for row in response.json()["data"]["data"]["items"]]

    await apply(runtime, world, "staff_a", verbatim(name="kept"))
    await apply(runtime, world, "staff_b", verbatim(name="other"))
    assert await names("staff_a") == ["kept"]
    assert await names("staff_b") == ["other"]
    assert await names("staff_a", "other") == []
    tables = runtime.caches.register(PLUGIN_TABLE_CACHE)
    built = tables.loads
    assert await names("staff_a") == ["kept"]
    assert await names("staff_b") == ["other"]
    assert await names("regular_a") == ["kept"]  # another member of the account: the same scope, the same table
    assert tables.loads == built
    plugin_id = (await client.get("/api/v1/plugins/", params={"name": "kept"}, headers=world["staff_a"].headers)).json()
    deleted = await client.delete(f"/api/v1/plugins/{plugin_id[0]['id']}/", headers=world["staff_a"].headers)
    assert deleted.status_code == 204, deleted.text
    assert await names("staff_a") == []
    assert await names("staff_b") == ["other"]


async def test_concurrent_applies_of_one_new_name_converge(world: World, runtime: Runtime) -> None:
    results = await asyncio.gather(*(apply(runtime, world, "staff_a", verbatim(name="racing")) for _ in range(3)))
    assert sorted(result.created for result in results) == [False, False, True]
    assert await counts(runtime) == {m.__name__: 1 for m in PLUGIN_ROWS}


# --- delete / deploy -------------------------------------------------------------------------------------------


async def test_delete_needs_ownership_and_removes_every_row(world: World, runtime: Runtime) -> None:
    await apply(runtime, world, "staff_a", verbatim())
    await apply(runtime, world, "superuser", verbatim(name="shared"))
    async with broker_context(runtime, world, "regular_a") as ctx:
        with pytest.raises(Forbidden):
            await BROKER.delete(ctx, "test_plugin")
    async with broker_context(runtime, world, "regular_a") as ctx:
        with pytest.raises(Forbidden):
            await BROKER.delete(ctx, "shared")  # the original let any user delete platform plugins
    async with broker_context(runtime, world, "staff_b") as ctx:
        with pytest.raises(NotFound):
            await BROKER.delete(ctx, "test_plugin")
    assert (await counts(runtime))["PluginMeta"] == 2
    async with broker_context(runtime, world, "staff_a") as ctx:
        await BROKER.delete(ctx, "test_plugin")
    assert await counts(runtime) == {"PluginMeta": 1, "PluginPrompt": 1, "PluginSelector": 1, "PluginDataStatic": 1}
    async with runtime.sessionmaker() as session:
        names = set((await session.execute(select(PluginMeta.name))).scalars())
    assert names == {"shared"}
    with pytest.raises(NotFound):
        await describe(runtime, world, "staff_a", "test_plugin")


async def test_deploy_and_undeploy_are_400(world: World, runtime: Runtime) -> None:
    await apply(runtime, world, "staff_a", verbatim())
    async with broker_context(runtime, world, "staff_a") as ctx:
        with pytest.raises(BadRequest):
            await BROKER.deploy(ctx, "test_plugin")
        with pytest.raises(BadRequest):
            await BROKER.undeploy(ctx, "test_plugin")


async def test_example_manifest_validates_and_applies(world: World, runtime: Runtime) -> None:
    example = BROKER.example_manifest()
    SAMPlugin.model_validate(example)
    assert Manifest.model_validate(example).to_sam().kind == "Plugin"
    result = await apply(runtime, world, "regular_b", example)
    assert result.created is True
    assert result.data["spec"]["data"]["parameters"]["properties"]["detailed"]["type"] == "boolean"
    assert "properties" in BROKER.json_schema()


# --- through the protocol routes ---------------------------------------------------------------------------------


CLI = "/api/v1/cli"


async def test_apply_verbatim_yaml_over_http(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    headers = {**world["staff_a"].headers, "Content-Type": "application/x-yaml"}
    first = await client.post(f"{CLI}/apply/", content=STATIC_PLUGIN_YAML.encode(), headers=headers)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["message"] == "Plugin test_plugin applied successfully"
    assert body["metadata"] == {"command": "apply", "thing": "Plugin"}
    again = await client.post(f"{CLI}/apply/", content=STATIC_PLUGIN_YAML.encode(), headers=headers)
    assert again.status_code == 200
    assert await counts(runtime) == {m.__name__: 1 for m in PLUGIN_ROWS}

    described = await client.post(f"{CLI}/describe/plugins/", params={"name": "test_plugin"}, headers=headers)
    assert described.status_code == 200, described.text
    assert isinstance(Manifest.model_validate(described.json()["data"]).to_sam(), SAMPlugin)

    listed = await client.post(f"{CLI}/get/plugin/", params={"name": "test_plugin"}, headers=headers)
    assert listed.status_code == 200, listed.text
    assert ManifestList.model_validate(listed.json()["data"]).names == ["test_plugin"]

    forbidden = await client.post(
        f"{CLI}/delete/Plugin/", params={"name": "test_plugin"}, headers=world["regular_a"].headers
    )
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["status"] == 403
    deleted = await client.post(f"{CLI}/delete/Plugin/", params={"name": "test_plugin"}, headers=headers)
    assert deleted.status_code == 200, deleted.text
    assert await counts(runtime) == {m.__name__: 0 for m in PLUGIN_ROWS}


async def test_invalid_manifest_over_http_is_422_naming_the_field(client: httpx.AsyncClient, world: World) -> None:
    document = verbatim()
    document["spec"]["selector"] = {"directive": "search_terms"}
    response = await client.post(f"{CLI}/apply/", json=document, headers=world["staff_a"].headers)
    assert response.status_code == 422, response.text
    assert "searchTerms" in response.json()["error"]["description"]
    deploy = await client.post(f"{CLI}/deploy/plugins/", params={"name": "x"}, headers=world["staff_a"].headers)
    assert deploy.status_code == 400
