"""The manifest API protocol (`/api/v1/cli/`): bodies, kinds, envelopes, contexts, OpenAPI.

Protocol mechanics are exercised with a small broker (`TestWidget`, deployable, kept in memory)
registered only for the tests that ask for it; the real kinds are used wherever they exist.
"""

from __future__ import annotations

import platform
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import httpx
import pytest
import yaml
from pydantic import BaseModel, Field
from smarter.models.journal import SAMJournalApiErrorResponse, SmarterJournaledResponse, SmarterJournalMessage
from smarter.models.manifest import KindInfo, Manifest, ManifestList
from smarter.models.platform import PlatformStatus, PlatformVersion, WhoAmI
from smarter.resources.manifests import ManifestValidation
from sqlalchemy import func, select

from app.errors import NotFound
from app.identifiers import PLATFORM_ACCOUNT_NUMBER
from app.models import Base, ImmutableFieldError
from app.runtime import Runtime
from app.schemas.manifests.base import SAMManifest, SAMModel
from app.services.manifests import protocol, registry
from app.services.manifests.base import ApplyResult, Broker, BrokerContext, Column
from tests.support import World

CLI = "/api/v1/cli"
YAML = {"Content-Type": "application/x-yaml"}


# --- a broker for protocol tests ------------------------------------------------------------------


class WidgetSpec(SAMModel):
    color: str = Field(max_length=20)
    size: int = Field(default=1, ge=1, le=10)


class WidgetManifest(SAMManifest):
    kind: Literal["TestWidget"]
    spec: WidgetSpec


class _Strict(BaseModel):
    count: int


@dataclass
class WidgetBroker(Broker[WidgetManifest]):
    kind: ClassVar[str] = "TestWidget"
    plural: ClassVar[str] = "TestWidgets"
    manifest_model = WidgetManifest
    deployable: ClassVar[bool] = True
    columns: ClassVar[tuple[Column, ...]] = (Column("name", "CharField"), Column("color", "CharField"))

    stored: dict[str, dict[str, Any]] = field(default_factory=dict)
    deployed: set[str] = field(default_factory=set)
    contexts: list[BrokerContext] = field(default_factory=list)

    async def apply(self, ctx: BrokerContext, manifest: WidgetManifest) -> ApplyResult:
        self.contexts.append(ctx)
        name = manifest.metadata.name
        if name == "invalid_inside":  # a broker that validates a service model of its own
            _Strict.model_validate({"count": "many"})
        if name == "immutable_inside":
            raise ImmutableFieldError("account_number")
        created = name not in self.stored
        self.stored[name] = manifest.model_dump(mode="json", by_alias=True, exclude={"status"}, exclude_none=True)
        return ApplyResult(name=name, created=created, data={"name": name, "created": created, "key": "shown-once"})

    async def describe(self, ctx: BrokerContext, name: str) -> dict[str, Any]:
        self.contexts.append(ctx)
        if name not in self.stored:
            raise NotFound(f"No TestWidget named {name!r} is visible to you.")
        return {**self.stored[name], "status": {"deployed": name in self.deployed}}

    async def get(self, ctx: BrokerContext, name: str | None) -> list[dict[str, Any]]:
        self.contexts.append(ctx)
        rows = [{"name": n, "color": m["spec"]["color"]} for n, m in self.stored.items()]
        return [r for r in rows if name is None or r["name"] == name]

    async def delete(self, ctx: BrokerContext, name: str) -> None:
        if self.stored.pop(name, None) is None:
            raise NotFound(f"No TestWidget named {name!r} is visible to you.")

    async def deploy(self, ctx: BrokerContext, name: str) -> str:
        self.deployed.add(name)
        return f"TestWidget {name} deployed"

    async def undeploy(self, ctx: BrokerContext, name: str) -> str:
        self.deployed.discard(name)
        return ""

    def example_manifest(self) -> dict[str, Any]:
        return widget("example_widget")


def widget(name: str = "blue_widget", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "smarter.sh/v1",
        "kind": "TestWidget",
        "metadata": {"name": name, "version": "1.0.0"},
        "spec": {"color": "blue", **spec},
    }


@pytest.fixture
def widgets() -> Iterator[WidgetBroker]:
    broker = WidgetBroker()
    registry.register(broker)
    try:
        yield broker
    finally:
        registry.unregister(broker.kind)


# --- helpers --------------------------------------------------------------------------------------


def journal_error(response: httpx.Response, status: int, command: str, thing: str = "None") -> dict[str, Any]:
    """Assert a journal error envelope (parsed by the SDK's own model) and return its `error`."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"api", "metadata", "error"}
    assert body["api"] == "smarter.sh/v1"
    assert body["metadata"] == {"command": command, "thing": thing}
    parsed = SAMJournalApiErrorResponse.model_validate(body)
    assert parsed.error.status == status
    assert parsed.error.description
    assert "Traceback" not in response.text
    assert "stacktrace" not in body["error"]
    return dict(body["error"])


def journal_ok(response: httpx.Response, command: str, thing: str = "None") -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["api"] == "smarter.sh/v1"
    assert body["metadata"] == {"command": command, "thing": thing}
    assert isinstance(body["message"], str)
    assert body["message"]
    return body


async def row_counts(runtime: Runtime) -> dict[str, int]:
    counts = {}
    async with runtime.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            counts[table.name] = (await conn.execute(select(func.count()).select_from(table))).scalar_one()
    return counts


# --- authentication and routing ---------------------------------------------------------------------

ENDPOINTS = [
    ("POST", "apply/", "apply", "None"),
    ("POST", "validate/", "validate", "None"),
    ("POST", "get/plugins/", "get", "Plugin"),
    ("GET", "get/Plugin/", "get", "Plugin"),
    ("POST", "describe/plugin/?name=x", "describe", "Plugin"),
    ("POST", "delete/plugin/?name=x", "delete", "Plugin"),
    ("POST", "deploy/plugin/?name=x", "deploy", "Plugin"),
    ("POST", "undeploy/plugin/?name=x", "undeploy", "Plugin"),
    ("POST", "logs/plugin/", "logs", "Plugin"),
    ("GET", "example-manifest/plugin/", "example_manifest", "Plugin"),
    ("POST", "json-schema/plugin/", "json_schema", "Plugin"),
    ("POST", "whoami/", "whoami", "None"),
    ("GET", "version/", "version", "None"),
    ("POST", "status/", "status", "None"),
    ("POST", "resources/", "resources", "None"),
]


@pytest.mark.parametrize(("method", "path", "command", "thing"), ENDPOINTS)
async def test_every_endpoint_needs_a_key(
    client: httpx.AsyncClient, runtime: Runtime, method: str, path: str, command: str, thing: str
) -> None:
    response = await client.request(method, f"{CLI}/{path}")
    journal_error(response, 401, command, thing)
    assert response.headers["WWW-Authenticate"] == "Token"
    bad = await client.request(method, f"{CLI}/{path}", headers={"Authorization": "Token " + "0" * 64})
    journal_error(bad, 401, command, thing)


async def test_reads_answer_get_and_post_with_or_without_slash(client: httpx.AsyncClient, world: World) -> None:
    headers = world["staff_a"].headers
    for path in ("whoami", "version", "status", "resources", "get/plugins", "logs/plugins"):
        for method in ("GET", "POST"):
            for spelling in (f"{CLI}/{path}", f"{CLI}/{path}/"):
                response = await client.request(method, spelling, headers=headers)
                assert response.status_code == 200, (method, spelling, response.text)
                assert response.json()["api"] == "smarter.sh/v1"


async def test_writes_are_post_only(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get(f"{CLI}/apply/", headers=world["staff_a"].headers)
    journal_error(response, 405, "apply")
    journal_error(await client.get(f"{CLI}/nowhere/", headers=world["staff_a"].headers), 404, "nowhere")


async def test_oversized_body_is_a_journal_413(client: httpx.AsyncClient, world: World) -> None:
    body = b"a: " + b"x" * (1024 * 1024)
    response = await client.post(f"{CLI}/apply/", content=body, headers={**world["staff_a"].headers, **YAML})
    journal_error(response, 413, "apply")


# --- platform commands ------------------------------------------------------------------------------


async def test_whoami_superuser_acts_in_the_platform_account(client: httpx.AsyncClient, world: World) -> None:
    body = journal_ok(await client.post(f"{CLI}/whoami/", headers=world["superuser"].headers), "whoami")
    data = SmarterJournaledResponse[WhoAmI].model_validate(body).data
    assert data is not None
    assert data.user.username == "admin"
    assert data.user.is_superuser is True
    assert data.account.account_number == PLATFORM_ACCOUNT_NUMBER
    assert data.account.id == world.platform.id
    assert data.environment == "local"


async def test_whoami_staff_and_multi_account_user(client: httpx.AsyncClient, world: World) -> None:
    staff = journal_ok(await client.get(f"{CLI}/whoami", headers=world["staff_a"].headers), "whoami")["data"]
    assert staff["user"]["username"] == "staff_a"
    assert staff["user"]["isStaff"] is True
    assert staff["account"]["accountNumber"] == world.account_a.account_number
    assert staff["account"]["name"] == "tenant_a"

    multi = world["multi"].headers
    first = journal_ok(await client.post(f"{CLI}/whoami/", headers=multi), "whoami")["data"]
    assert first["account"]["accountNumber"] == world.account_a.account_number  # first profile
    named = await client.post(f"{CLI}/whoami/", params={"accountNumber": world.account_b.account_number}, headers=multi)
    assert journal_ok(named, "whoami")["data"]["account"]["accountNumber"] == world.account_b.account_number
    outsider = await client.post(f"{CLI}/whoami/", params={"accountNumber": PLATFORM_ACCOUNT_NUMBER}, headers=multi)
    assert journal_error(outsider, 422, "whoami")["errors"][0]["loc"] == ["query", "accountNumber"]


@pytest.mark.parametrize("actor", ["staff_a", "superuser"])
async def test_staff_see_the_platform_details(client: httpx.AsyncClient, world: World, actor: str) -> None:
    headers = world[actor].headers
    version = journal_ok(await client.post(f"{CLI}/version/", headers=headers), "version")
    parsed = SmarterJournaledResponse[PlatformVersion].model_validate(version).data
    assert parsed is not None
    assert parsed.api.version
    assert parsed.api.python["fastapi"]
    assert parsed.api.python["python"]

    status = journal_ok(await client.post(f"{CLI}/status/", headers=headers), "status")
    data = SmarterJournaledResponse[PlatformStatus].model_validate(status).data
    assert data is not None
    assert data.infrastructures["database"]["status"] == "ok"
    assert data.infrastructures["database"]["backend"] in ("sqlite", "postgresql")
    assert data.infrastructures["database"]["revision"] == data.infrastructures["database"]["head"]
    assert data.compute["python"]


@pytest.mark.parametrize("actor", ["regular_a", "multi"])
async def test_regular_users_see_no_backend_or_versions(client: httpx.AsyncClient, world: World, actor: str) -> None:
    """status/ and version/ answer them (the SDK's shapes), without the database backend or any version
    but the service's own."""
    headers = world[actor].headers
    version = journal_ok(await client.post(f"{CLI}/version/", headers=headers), "version")
    parsed = SmarterJournaledResponse[PlatformVersion].model_validate(version).data
    assert parsed is not None
    assert parsed.api.version
    assert parsed.api.python == {}

    response = await client.post(f"{CLI}/status/", headers=headers)
    status = journal_ok(response, "status")
    data = SmarterJournaledResponse[PlatformStatus].model_validate(status).data
    assert data is not None
    assert data.infrastructures == {"database": {"status": "ok"}}
    assert data.compute == {}
    for secret in ("sqlite", "postgresql", platform.python_version()):
        assert secret not in response.text


async def test_version_status_and_resources(client: httpx.AsyncClient, world: World) -> None:
    headers = world["regular_a"].headers

    kinds = journal_ok(await client.post(f"{CLI}/resources/", headers=headers), "resources")
    infos = SmarterJournaledResponse[list[KindInfo]].model_validate(kinds).data
    assert infos is not None
    by_kind = {info.api_kind: info for info in infos}
    assert set(by_kind) == {b.kind for b in registry.brokers()}
    expected = {"Account", "User", "Plugin", "SmarterAuthToken", "Secret", "SqlConnection", "ApiConnection"}
    assert expected | {"SqlPlugin", "ApiPlugin"} <= set(by_kind)
    assert by_kind["SmarterAuthToken"].deployable is True
    assert by_kind["Plugin"].plural == "Plugins"
    assert by_kind["Plugin"].deployable is False


async def test_resources_list_registered_kinds(client: httpx.AsyncClient, world: World, widgets: WidgetBroker) -> None:
    body = journal_ok(await client.post(f"{CLI}/resources/", headers=world["staff_a"].headers), "resources")
    rows = {row["APIKind"]: row for row in body["data"]}
    assert rows["TestWidget"] == {
        "Singular": "TestWidget",
        "Plural": "TestWidgets",
        "APIKind": "TestWidget",
        "Display": "TestWidget",
        "DisplayPlural": "TestWidgets",
        "Deployable": True,
    }


# --- bodies -------------------------------------------------------------------------------------------


async def test_apply_json_body(client: httpx.AsyncClient, world: World, widgets: WidgetBroker) -> None:
    response = await client.post(f"{CLI}/apply/", json=widget(), headers=world["staff_a"].headers)
    body = journal_ok(response, "apply", "TestWidget")
    assert body["message"] == "TestWidget blue_widget applied successfully"
    assert body["data"] == {"name": "blue_widget", "created": True, "key": "shown-once"}
    assert SmarterJournalMessage.model_validate(body).message == body["message"]
    assert widgets.stored["blue_widget"]["spec"] == {"color": "blue", "size": 1}


@pytest.mark.parametrize("media", ["application/x-yaml", "text/yaml", "application/yaml", "text/plain", None])
async def test_apply_yaml_body_with_dates(
    client: httpx.AsyncClient, world: World, widgets: WidgetBroker, media: str | None
) -> None:
    manifest = """
apiVersion: smarter.sh/v1
kind: TestWidget
metadata:
  name: Dated Widget
  version: 1.0.0
  annotations:
    - smarter.sh/created-at: 2024-01-01T00:00:00Z
    - smarter.sh/updated-at: 2024-01-01
spec:
  color: red
"""
    headers = {**world["staff_a"].headers, **({"Content-Type": media} if media else {})}
    response = await client.post(f"{CLI}/apply/", content=manifest.encode(), headers=headers)
    assert journal_ok(response, "apply", "TestWidget")["message"] == "TestWidget dated_widget applied successfully"
    annotations = widgets.stored["dated_widget"]["metadata"]["annotations"]
    assert annotations == [
        {"smarter.sh/created-at": "2024-01-01T00:00:00+00:00"},
        {"smarter.sh/updated-at": "2024-01-01"},
    ]


@pytest.mark.parametrize(
    ("content", "media"),
    [
        (b"", "application/json"),
        (b"   \n", "application/x-yaml"),
        (b"- a\n- b\n", "application/x-yaml"),
        (b"just a string", "application/x-yaml"),
        (b"null", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'{"kind": "TestWidget",', "application/json"),
        (b"kind: [unclosed\n", "application/x-yaml"),
        (b"a: 1\n---\nb: 2\n", "application/x-yaml"),
        (b"\xff\xfe\x00garbage", "application/json"),
        (b'{"a": NaN}', "application/json"),
        (b'{"a": 1e999}', "application/json"),
        (b"a: .inf\n", "application/x-yaml"),
        (b"a: !!binary aGVsbG8=\n", "application/x-yaml"),
        (b"[" * 5000 + b"]" * 5000, "application/json"),
        (b'{"a": ' + b"9" * 5000 + b"}", "application/json"),
    ],
)
async def test_unusable_bodies_are_400(
    client: httpx.AsyncClient, world: World, widgets: WidgetBroker, content: bytes, media: str
) -> None:
    headers = {**world["staff_a"].headers, "Content-Type": media}
    response = await client.post(f"{CLI}/apply/", content=content, headers=headers)
    error = journal_error(response, 400, "apply")
    assert error["errorClass"] == "BadRequest"
    assert widgets.stored == {}


async def test_python_object_tags_are_refused_safely(
    client: httpx.AsyncClient, world: World, widgets: WidgetBroker, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    for payload in (
        f'!!python/object/apply:os.system ["touch {marker}"]',
        f"kind: TestWidget\nx: !!python/object/apply:os.system ['touch {marker}']\n",
        "!!python/object:app.models.User {username: x}\n",
        "!!python/name:os.system\n",
    ):
        response = await client.post(
            f"{CLI}/apply/", content=payload.encode(), headers={**world["staff_a"].headers, **YAML}
        )
        journal_error(response, 400, "apply")
    assert not marker.exists()
    assert widgets.stored == {}


async def test_yaml_alias_bomb_is_refused_quickly(client: httpx.AsyncClient, world: World) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    started = time.monotonic()
    response = await client.post(
        f"{CLI}/validate/", content="\n".join(lines).encode(), headers={**world["staff_a"].headers, **YAML}
    )
    assert time.monotonic() - started < 10  # a bound on a bomb, not a latency target
    body = journal_ok(response, "validate")
    assert body["data"]["valid"] is False
    assert "anchors" in body["data"]["errors"][0]["msg"]


# --- kinds and fields --------------------------------------------------------------------------------


async def test_unknown_api_version_is_422(client: httpx.AsyncClient, world: World, widgets: WidgetBroker) -> None:
    response = await client.post(
        f"{CLI}/apply/", json={**widget(), "apiVersion": "smarter.sh/v2"}, headers=world["staff_a"].headers
    )
    error = journal_error(response, 422, "apply", "TestWidget")
    assert error["errors"][0]["loc"] == ["body", "apiVersion"]
    assert "apiVersion" in error["description"]


@pytest.mark.parametrize(
    ("kind", "status"), [(None, 422), (42, 422), ("Gadget", 400), ("WebsearchPlugin", 400), ("testwidget", 422)]
)
async def test_missing_unknown_or_misspelt_kind(
    client: httpx.AsyncClient, world: World, widgets: WidgetBroker, kind: object, status: int
) -> None:
    document = widget()
    if kind is None:
        del document["kind"]
    else:
        document["kind"] = kind
    response = await client.post(f"{CLI}/apply/", json=document, headers=world["staff_a"].headers)
    error = journal_error(response, status, "apply")
    if status == 422:
        assert error["errors"][0]["loc"] == ["body", "kind"]
    else:
        assert "Unsupported kind" in error["description"]


async def test_invalid_fields_are_named_without_echoing_values(
    client: httpx.AsyncClient, world: World, widgets: WidgetBroker
) -> None:
    secret = "s3cr3t-value-that-must-not-echo"
    document = widget(size=secret)
    document["metadata"]["color"] = secret  # unknown field
    document["metadata"]["version"] = "not-semver"
    response = await client.post(f"{CLI}/apply/", json=document, headers=world["staff_a"].headers)
    error = journal_error(response, 422, "apply", "TestWidget")
    locs = {tuple(e["loc"]) for e in error["errors"]}
    assert {("body", "spec", "size"), ("body", "metadata", "color"), ("body", "metadata", "version")} <= locs
    assert "spec.size" in error["description"]
    assert secret not in response.text
    assert widgets.stored == {}


async def test_broker_validation_errors_become_422(
    client: httpx.AsyncClient, world: World, widgets: WidgetBroker
) -> None:
    headers = world["staff_a"].headers
    invalid = await client.post(f"{CLI}/apply/", json=widget("invalid_inside"), headers=headers)
    assert journal_error(invalid, 422, "apply", "TestWidget")["errors"][0]["loc"] == ["body", "count"]
    immutable = await client.post(f"{CLI}/apply/", json=widget("immutable_inside"), headers=headers)
    assert journal_error(immutable, 422, "apply", "TestWidget")["errors"][0]["loc"] == ["body", "accountNumber"]


@pytest.mark.parametrize(
    "segment", ["TestWidget", "testwidget", "TESTWIDGETS", "testwidgets", "test_widget", "test_widgets", "test-widget"]
)
async def test_kind_segment_spellings(
    client: httpx.AsyncClient, world: World, widgets: WidgetBroker, segment: str
) -> None:
    headers = world["staff_a"].headers
    await client.post(f"{CLI}/apply/", json=widget(), headers=headers)
    body = journal_ok(await client.post(f"{CLI}/get/{segment}/", headers=headers), "get", "TestWidget")
    assert body["data"]["kind"] == "TestWidget"
    assert body["data"]["metadata"]["count"] == 1


async def test_real_kind_segment_spellings(client: httpx.AsyncClient, world: World) -> None:
    spellings = {
        "Plugin": ["plugin", "Plugins", "PLUGINS"],
        "SmarterAuthToken": ["SmarterAuthToken", "smarter_auth_token", "smarterauthtokens", "smarter_auth_tokens"],
        "User": ["user", "Users"],
        "Account": ["ACCOUNT", "accounts"],
    }
    for kind, segments in spellings.items():
        for segment in segments:
            response = await client.get(f"{CLI}/get/{segment}/", headers=world["superuser"].headers)
            assert journal_ok(response, "get", kind)["data"]["kind"] == kind, segment


async def test_unknown_kind_segment_is_400(client: httpx.AsyncClient, world: World) -> None:
    for path in ("get/gadgets/", "describe/gadget/?name=x", "example-manifest/WebsearchPlugin/", "logs/widget/"):
        response = await client.post(f"{CLI}/{path}", headers=world["staff_a"].headers)
        error = journal_error(response, 400, path.split("/")[0].replace("-", "_"))
        assert "Unsupported kind" in error["description"]


@pytest.mark.parametrize("command", ["describe", "delete", "deploy", "undeploy"])
async def test_missing_name_is_422(client: httpx.AsyncClient, world: World, command: str) -> None:
    response = await client.post(f"{CLI}/{command}/plugin/", headers=world["staff_a"].headers)
    error = journal_error(response, 422, command, "Plugin")
    assert error["errors"][0]["loc"] == ["query", "name"]
    empty = await client.post(f"{CLI}/{command}/plugin/", params={"name": ""}, headers=world["staff_a"].headers)
    journal_error(empty, 422, command, "Plugin")


# --- commands through a broker -------------------------------------------------------------------------


async def test_get_describe_delete_round_trip(client: httpx.AsyncClient, world: World, widgets: WidgetBroker) -> None:
    headers = world["staff_a"].headers
    await client.post(f"{CLI}/apply/", json=widget("blue_widget"), headers=headers)
    await client.post(f"{CLI}/apply/", json=widget("red_widget", color="red"), headers=headers)

    listed = journal_ok(await client.post(f"{CLI}/get/testwidgets/", headers=headers), "get", "TestWidget")
    table = SmarterJournaledResponse[ManifestList].model_validate(listed).data
    assert table is not None
    assert table.kind == "TestWidget"
    assert table.name is None
    assert table.metadata.count == 2
    assert [(t.name, t.type) for t in table.data.titles] == [("name", "CharField"), ("color", "CharField")]
    assert sorted(table.names) == ["blue_widget", "red_widget"]

    one = await client.get(f"{CLI}/get/testwidgets/", params={"name": "red_widget"}, headers=headers)
    data = journal_ok(one, "get", "TestWidget")["data"]
    assert data["name"] == "red_widget"
    assert data["data"]["items"] == [{"name": "red_widget", "color": "red"}]

    described = journal_ok(
        await client.post(f"{CLI}/describe/TestWidget/", params={"name": "red_widget"}, headers=headers),
        "describe",
        "TestWidget",
    )
    manifest = SmarterJournaledResponse[Manifest].model_validate(described).data
    assert manifest is not None
    assert manifest.kind == "TestWidget"
    assert manifest.metadata.name == "red_widget"
    assert manifest.spec == {"color": "red", "size": 1}
    assert manifest.status == {"deployed": False}
    # A described manifest applies as is (its status is ignored).
    reapplied = await client.post(f"{CLI}/apply/", json=described["data"], headers=headers)
    assert journal_ok(reapplied, "apply", "TestWidget")["data"]["created"] is False

    deleted = await client.post(f"{CLI}/delete/TestWidget/", params={"name": "red_widget"}, headers=headers)
    body = journal_ok(deleted, "delete", "TestWidget")
    assert body["message"] == "TestWidget red_widget deleted successfully"
    assert SmarterJournalMessage.model_validate(body).message == body["message"]
    assert set(widgets.stored) == {"blue_widget"}
    gone = await client.post(f"{CLI}/describe/TestWidget/", params={"name": "red_widget"}, headers=headers)
    journal_error(gone, 404, "describe", "TestWidget")


async def test_deploy_and_undeploy(client: httpx.AsyncClient, world: World, widgets: WidgetBroker) -> None:
    headers = world["staff_a"].headers
    await client.post(f"{CLI}/apply/", json=widget(), headers=headers)
    deployed = await client.post(f"{CLI}/deploy/testwidget/", params={"name": "blue_widget"}, headers=headers)
    assert journal_ok(deployed, "deploy", "TestWidget")["message"] == "TestWidget blue_widget deployed"
    assert widgets.deployed == {"blue_widget"}
    undeployed = await client.post(f"{CLI}/undeploy/testwidget/", params={"name": "blue_widget"}, headers=headers)
    assert (
        journal_ok(undeployed, "undeploy", "TestWidget")["message"] == "TestWidget blue_widget undeployed successfully"
    )
    assert widgets.deployed == set()


async def test_non_deployable_kinds_are_400(client: httpx.AsyncClient, world: World) -> None:
    for kind in ("Plugin", "User", "Account"):
        for command in ("deploy", "undeploy"):
            response = await client.post(
                f"{CLI}/{command}/{kind}/", params={"name": "x"}, headers=world["superuser"].headers
            )
            assert "cannot be" in journal_error(response, 400, command, kind)["description"]


AUTH_TOKEN = {
    "apiVersion": "smarter.sh/v1",
    "kind": "SmarterAuthToken",
    "metadata": {"name": "New API Key", "description": "CI", "version": "1.0.0"},
    "spec": {"config": {"isActive": True, "username": "staff_a"}},
}


async def test_auth_token_apply_returns_the_key_once(client: httpx.AsyncClient, world: World) -> None:
    headers = world["staff_a"].headers
    named = {"name": "new_api_key"}
    created = await client.post(f"{CLI}/apply/", json=AUTH_TOKEN, headers=headers)
    body = journal_ok(created, "apply", "SmarterAuthToken")
    assert body["message"] == "SmarterAuthToken new_api_key applied successfully"
    key = body["data"]["key"]
    assert len(key) == 64
    new_key = {"Authorization": f"Token {key}"}
    whoami = await client.post(f"{CLI}/whoami/", headers=new_key)
    assert journal_ok(whoami, "whoami")["data"]["user"]["username"] == "staff_a"

    again = await client.post(f"{CLI}/apply/", json=AUTH_TOKEN, headers=headers)
    assert "key" not in journal_ok(again, "apply", "SmarterAuthToken")["data"]
    described = await client.post(f"{CLI}/describe/smarter_auth_token/", params=named, headers=headers)
    assert key not in journal_ok(described, "describe", "SmarterAuthToken")["message"] + described.text

    undeployed = await client.post(f"{CLI}/undeploy/smarterauthtokens/", params=named, headers=headers)
    journal_ok(undeployed, "undeploy", "SmarterAuthToken")
    journal_error(await client.post(f"{CLI}/whoami/", headers=new_key), 401, "whoami")
    deployed = await client.post(f"{CLI}/deploy/SmarterAuthToken/", params=named, headers=headers)
    journal_ok(deployed, "deploy", "SmarterAuthToken")
    assert (await client.post(f"{CLI}/whoami/", headers=new_key)).status_code == 200


async def test_logs_are_empty_for_every_kind(client: httpx.AsyncClient, world: World, widgets: WidgetBroker) -> None:
    for broker in registry.brokers():
        for params in ({}, {"name": "anything"}):
            response = await client.post(f"{CLI}/logs/{broker.kind}/", params=params, headers=world["staff_a"].headers)
            body = journal_ok(response, "logs", broker.kind)
            assert body["data"] == {}
            assert SmarterJournaledResponse[dict[str, Any]].model_validate(body).data == {}


async def test_example_manifest_and_json_schema_for_every_kind(
    client: httpx.AsyncClient, world: World, widgets: WidgetBroker
) -> None:
    headers = world["regular_a"].headers
    for broker in registry.brokers():
        example = journal_ok(
            await client.get(f"{CLI}/example-manifest/{broker.kind}/", headers=headers), "example_manifest", broker.kind
        )
        manifest = SmarterJournaledResponse[Manifest].model_validate(example).data
        assert manifest is not None
        assert manifest.kind == broker.kind
        # The example passes the server's own validation.
        checked = await client.post(f"{CLI}/validate/", json=example["data"], headers=headers)
        assert journal_ok(checked, "validate", broker.kind)["data"] == {"valid": True, "errors": []}

        schema = journal_ok(
            await client.post(f"{CLI}/json-schema/{broker.kind}/", headers=headers), "json_schema", broker.kind
        )
        assert schema["data"]["type"] == "object"
        assert {"apiVersion", "kind", "metadata", "spec"} <= set(schema["data"]["properties"])


async def test_broker_context_carries_the_acting_account(
    client: httpx.AsyncClient, world: World, widgets: WidgetBroker
) -> None:
    multi = world["multi"]
    await client.post(f"{CLI}/get/testwidgets/", headers=multi.headers)
    await client.post(
        f"{CLI}/get/testwidgets/", params={"accountNumber": world.account_b.account_number}, headers=multi.headers
    )
    first, named = widgets.contexts
    assert first.acting is not None
    assert first.acting.account_id == world.account_a.id
    assert named.acting is not None
    assert named.acting.account_id == world.account_b.id
    assert first.principal.user_id == multi.user.id
    assert first.settings.environment == "local"
    outsider = await client.post(
        f"{CLI}/get/testwidgets/", params={"accountNumber": PLATFORM_ACCOUNT_NUMBER}, headers=multi.headers
    )
    journal_error(outsider, 422, "get", "TestWidget")


# --- validate --------------------------------------------------------------------------------------------


async def test_validate_reports_without_writing(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    headers = world["staff_a"].headers
    example = (await client.post(f"{CLI}/example-manifest/plugin/", headers=headers)).json()["data"]
    before = await row_counts(runtime)

    valid = journal_ok(await client.post(f"{CLI}/validate/", json=example, headers=headers), "validate", "Plugin")
    assert valid["data"] == {"valid": True, "errors": []}
    assert ManifestValidation.model_validate(valid["data"]).valid is True

    broken = {**example, "spec": {**example["spec"], "prompt": {"temperature": 7}}}
    invalid = journal_ok(await client.post(f"{CLI}/validate/", json=broken, headers=headers), "validate", "Plugin")
    assert invalid["data"]["valid"] is False
    assert ["body", "spec", "prompt", "temperature"] in [e["loc"] for e in invalid["data"]["errors"]]

    for content, thing in ((b"kind: [", "None"), (b"- a list", "None"), (b"kind: Gadget\n", "None")):
        response = await client.post(f"{CLI}/validate/", content=content, headers={**headers, **YAML})
        body = journal_ok(response, "validate", thing)
        assert body["data"]["valid"] is False
        assert body["data"]["errors"][0]["msg"]

    assert await row_counts(runtime) == before
    journal_error(await client.post(f"{CLI}/validate/", json=example), 401, "validate")


# --- a real kind end to end --------------------------------------------------------------------------------

STATIC_PLUGIN_YAML = """---
apiVersion: smarter.sh/v1
kind: Plugin
metadata:
  name: Test Plugin
  pluginClass: static
  description: A 'hello world' style plugin.
  version: 0.2.0
  tags:
    - red
  annotations:
    - smarter.sh/plugin/author: "Your Name"
    - smarter.sh/plugin/reviewed-at: 2024-01-02
spec:
  selector:
    directive: search_terms
    searchTerms:
      - example function calling configuration
  prompt:
    provider: openai
    systemRole: >
      You are helpful.
    model: gpt-4o-mini
    temperature: 0.0
    maxTokens: 256
  data:
    description: an example plugin.
    staticData:
      platformProvider: OpenAI
"""


async def test_plugin_yaml_apply_describe_delete(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    headers = world["staff_a"].headers
    applied = await client.post(f"{CLI}/apply/", content=STATIC_PLUGIN_YAML.encode(), headers={**headers, **YAML})
    assert journal_ok(applied, "apply", "Plugin")["message"] == "Plugin test_plugin applied successfully"

    described = await client.get(f"{CLI}/describe/plugins/", params={"name": "test_plugin"}, headers=headers)
    manifest = SmarterJournaledResponse[Manifest].model_validate(journal_ok(described, "describe", "Plugin")).data
    assert manifest is not None
    assert {"smarter.sh/plugin/reviewed-at": "2024-01-02"} in manifest.metadata.annotations
    assert manifest.to_sam().metadata.name == "test_plugin"

    listed = journal_ok(await client.post(f"{CLI}/get/plugin/", headers=world["regular_a"].headers), "get", "Plugin")
    assert listed["data"]["metadata"]["count"] == 1
    assert listed["data"]["data"]["items"][0]["name"] == "test_plugin"

    # Another tenant cannot see it.
    hidden = await client.post(
        f"{CLI}/describe/plugin/", params={"name": "test_plugin"}, headers=world["staff_b"].headers
    )
    journal_error(hidden, 404, "describe", "Plugin")

    deleted = await client.post(f"{CLI}/delete/plugin/", params={"name": "test_plugin"}, headers=headers)
    assert journal_ok(deleted, "delete", "Plugin")["message"] == "Plugin test_plugin deleted successfully"
    assert (await row_counts(runtime))["plugin_meta"] == 0


# --- OpenAPI ---------------------------------------------------------------------------------------------


async def test_openapi_documents_the_protocol(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    paths = {p: v for p, v in document["paths"].items() if p.startswith(CLI)}
    assert len(paths) == 14
    error_ref = "#/components/schemas/JournalErrorResponse"
    operation_ids = set()
    for path, operations in paths.items():
        for method, operation in operations.items():
            operation_ids.add(operation["operationId"])
            assert operation["tags"] == ["manifests"]
            assert operation["summary"], (method, path)
            assert operation["description"], (method, path)
            responses = operation["responses"]
            assert {"200", "401", "503"} <= set(responses), (method, path)
            assert ("413" in responses) == (method == "post"), (method, path)
            for status, response in responses.items():
                if status != "200":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": error_ref}, (method, path, status)
    assert len(operation_ids) == sum(len(v) for v in paths.values())
    apply = paths[f"{CLI}/apply/"]["post"]
    assert {"400", "403", "404", "409", "413", "422"} <= set(apply["responses"])
    assert set(apply["requestBody"]["content"]) == {
        "application/json",
        "application/x-yaml",
        "application/yaml",
        "text/yaml",
    }
    assert {"get", "post"} == set(paths[f"{CLI}/describe/{{kind}}/"])
    assert set(paths[f"{CLI}/apply/"]) == {"post"}


async def test_every_body_is_parsed_off_the_event_loop(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Which thread parses is the deterministic fact; a latency threshold would flake on a busy machine.
    parsed_on: list[bool] = []
    real_parse = protocol._parse_document

    def recording_parse(raw: bytes, content_type: str | None) -> dict[str, Any]:
        parsed_on.append(threading.current_thread() is threading.main_thread())
        return real_parse(raw, content_type)

    monkeypatch.setattr(protocol, "_parse_document", recording_parse)
    example = (await client.post(f"{CLI}/example-manifest/plugin/", headers=world["staff_a"].headers)).json()["data"]
    small = yaml.safe_dump(example).encode()
    facts = {f"fact_{i}": {"text": "some words " * 3, "n": [i, i + 1]} for i in range(700)}
    example["spec"]["data"]["staticData"] = facts
    body = yaml.safe_dump(example).encode()

    for document in (small, body):
        response = await client.post(f"{CLI}/validate/", content=document, headers={**world["staff_a"].headers, **YAML})
        assert journal_ok(response, "validate", "Plugin")["data"] == {"valid": True, "errors": []}
    assert parsed_on == [False, False]  # small or large, on a worker thread


async def test_nul_characters_are_refused_on_every_backend(client: httpx.AsyncClient, world: World) -> None:
    headers = world["staff_a"].headers
    example = (await client.post(f"{CLI}/example-manifest/plugin/", headers=headers)).json()["data"]
    example["metadata"]["description"] = "nul \u0000 inside"
    example["spec"]["data"]["staticData"] = {"k\u0000": "v\u0000"}
    response = await client.post(f"{CLI}/apply/", json=example, headers=headers)
    assert "NUL" in journal_error(response, 400, "apply")["description"]
    example["metadata"]["description"] = "fine"
    response = await client.post(f"{CLI}/apply/", json=example, headers=headers)
    assert "NUL" in journal_error(response, 400, "apply")["description"]  # in a key, too
