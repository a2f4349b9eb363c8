"""The official SDK (`smarter-api==0.6.0`) against a live server: every manifest verb, for every kind.

One real server per module: `smarter-core serve` in a subprocess on a free port, on a fresh database
(it migrates, bootstraps and prints the admin key, which the fixture reads from its banner).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from smarter import Smarter
from smarter.core.exceptions import AuthenticationError, BadRequestError, NotFoundError, UnprocessableEntityError
from smarter.models.manifest import Manifest
from smarter.models.sam import SAM_MODELS

from tests import support
from tests.live import live_server

pytestmark = pytest.mark.slow


@dataclass
class SdkServer:
    base_url: str
    admin_key: str

    def client(self, key: str | None = None) -> Smarter:
        return Smarter(api_key=key or self.admin_key, base_url=self.base_url, max_retries=0, timeout=30)


@pytest.fixture(scope="module")
def server() -> Iterator[SdkServer]:
    url = asyncio.run(support.fresh_database_url())
    try:
        with live_server(url, SMARTER_CORE_ENVIRONMENT="sdk-test") as live:
            yield SdkServer(base_url=live.base_url, admin_key=live.admin_key)
    finally:
        if url.startswith("postgresql"):
            asyncio.run(support.drop_postgres_database(url))


@pytest.fixture(scope="module")
def admin(server: SdkServer) -> Iterator[Smarter]:
    with server.client() as client:
        yield client


def sam(manifest: Manifest) -> Any:
    """The manifest through the SDK's own typed SAM model of its kind (raises if it does not match)."""
    typed = manifest.to_sam()
    assert isinstance(typed, SAM_MODELS[manifest.kind])
    return typed


# --- platform ----------------------------------------------------------------------------------------


def test_whoami_version_status_kinds(admin: Smarter) -> None:
    me = admin.whoami()
    assert me.user.username == "admin"
    assert me.user.is_superuser is True
    assert me.account.account_number == "3141-5926-5359"
    assert me.environment == "sdk-test"

    version = admin.version()
    assert version.api.version
    assert version.api.python["pydantic"]

    status = admin.status()
    assert status.infrastructures["database"]["status"] == "ok"

    kinds = {info.api_kind: info for info in admin.kinds()}
    expected = {"Account", "User", "Plugin", "SmarterAuthToken", "Secret", "SqlConnection", "ApiConnection"}
    assert expected | {"SqlPlugin", "ApiPlugin"} <= set(kinds)
    assert all(info.plural == f"{kind}s" for kind, info in kinds.items())


# --- every manifest verb, for every kind ---------------------------------------------------------

KINDS = ("Account", "User", "Plugin", "SmarterAuthToken", "Secret")


def resource_name(manifest: Manifest) -> str:
    """What `?name=` takes: the metadata name, except for User (the username)."""
    if manifest.kind == "User":
        return str(getattr(manifest.metadata, "username", None) or manifest.metadata.name)
    return manifest.metadata.name


def applicable_example(client: Smarter, kind: str, name: str) -> Manifest:
    """The server's example manifest of the kind, renamed, and for keys owned by `admin` (a staff user)."""
    example = client.manifests.example_manifest(kind)
    document = example.model_dump(mode="json", exclude_none=True, exclude={"status"})
    document["metadata"]["name"] = name
    if kind == "User":
        document["metadata"]["username"] = name
        document["spec"]["config"]["email"] = f"{name}@example.com"
    if kind == "SmarterAuthToken":
        document["spec"]["config"]["username"] = "admin"
    if kind == "Account":
        document["metadata"].pop("accountNumber", None)
    return Manifest.model_validate(document)


@pytest.mark.parametrize("kind", KINDS)
def test_example_manifest_and_json_schema(admin: Smarter, kind: str) -> None:
    example = admin.manifests.example_manifest(kind)
    assert example.kind == kind
    sam(example)
    assert admin.manifests.validate(example).valid is True
    schema = admin.manifests.json_schema(kind)
    assert {"apiVersion", "kind", "metadata", "spec"} <= set(schema["properties"])


@pytest.mark.parametrize("kind", KINDS)
def test_every_manifest_verb(admin: Smarter, kind: str) -> None:
    manifest = applicable_example(admin, kind, f"sdk_{kind.lower()}")
    name = resource_name(manifest)

    validation = admin.manifests.validate(manifest)
    assert validation.valid is True
    assert validation.errors == []

    applied = admin.manifests.apply(manifest)
    assert applied.message == f"{kind} {name} applied successfully"
    assert applied.metadata is not None
    assert (applied.metadata.command, applied.metadata.thing) == ("apply", kind)

    table = admin.manifests.get(kind)
    assert name in table.names
    assert table.metadata.count == len(table.items)
    assert table.data.titles
    only = admin.manifests.get(kind, name)
    assert only.names == [name]

    described = admin.manifests.describe(kind, name)
    assert described.kind == kind
    assert described.status is not None
    assert described.status["recordLocator"]
    typed = sam(described)
    assert typed.metadata.name == manifest.metadata.name

    # describe -> apply round-trips: the SDK drops the status, the server changes nothing.
    again = admin.manifests.apply(described)
    assert again.message == applied.message
    assert admin.manifests.describe(kind, name).spec == described.spec

    logs = admin.manifests.logs(kind, name)
    assert logs.data == {}

    if kind == "SmarterAuthToken":
        assert admin.manifests.undeploy(kind, name).message
        assert admin.manifests.describe(kind, name).spec["config"]["isActive"] is False
        assert admin.manifests.deploy(kind, name).message
        assert admin.manifests.describe(kind, name).spec["config"]["isActive"] is True
    else:
        with pytest.raises(BadRequestError):
            admin.manifests.deploy(kind, name)
        with pytest.raises(BadRequestError):
            admin.manifests.undeploy(kind, name)

    deleted = admin.manifests.delete(kind, name)
    assert deleted.message == f"{kind} {name} deleted successfully"
    with pytest.raises(NotFoundError):
        admin.manifests.describe(kind, name)
    assert name not in admin.manifests.get(kind).names


def test_invalid_and_unknown_manifests_through_the_sdk(admin: Smarter) -> None:
    invalid = admin.manifests.validate(
        {"apiVersion": "smarter.sh/v1", "kind": "Plugin", "metadata": {"name": "x"}, "spec": {}}
    )
    assert invalid.valid is False
    assert invalid.errors
    with pytest.raises(UnprocessableEntityError) as unprocessable:
        admin.manifests.apply({"apiVersion": "smarter.sh/v1", "kind": "Plugin", "metadata": {"name": "x"}, "spec": {}})
    assert unprocessable.value.error is not None
    assert unprocessable.value.error.status == 422
    with pytest.raises(BadRequestError) as unknown:
        admin.manifests.get("Gadget")
    assert "Unsupported kind" in str(unknown.value)
    with pytest.raises(NotFoundError):
        admin.manifests.describe("Plugin", "no_such_plugin")


# --- the kind resources ------------------------------------------------------------------------------


def test_smarter_auth_token_key_is_returned_once_and_works(server: SdkServer, admin: Smarter) -> None:
    manifest = applicable_example(admin, "SmarterAuthToken", "sdk_ci_key")
    applied = admin.manifests.apply(manifest)
    key = (applied.model_extra or {})["data"]["key"]
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    with server.client(key) as ci:
        assert ci.whoami().user.username == "admin"
        admin.manifests.undeploy("SmarterAuthToken", "sdk_ci_key")
        with pytest.raises(AuthenticationError):
            ci.whoami()
        admin.manifests.deploy("SmarterAuthToken", "sdk_ci_key")
        assert ci.whoami().user.username == "admin"
    # Applying again updates the key and never shows a plaintext again.
    again = admin.manifests.apply(manifest)
    assert "key" not in ((again.model_extra or {}).get("data") or {})
    admin.manifests.delete("SmarterAuthToken", "sdk_ci_key")


def test_accounts_kind_resource(admin: Smarter) -> None:
    example = admin.accounts.example_manifest()
    sam(example)
    assert "properties" in admin.accounts.json_schema()
    manifest = applicable_example(admin, "Account", "sdk_tenant")
    assert admin.accounts.apply(manifest).message == "Account sdk_tenant applied successfully"
    described = admin.accounts.describe("sdk_tenant")
    assert sam(described).metadata.name == "sdk_tenant"
    assert described.metadata.model_extra is not None
    assert re.fullmatch(r"\d{4}-\d{4}-\d{4}", str(described.metadata.model_extra["accountNumber"]))
    assert admin.accounts.find("sdk_tenant").name == "sdk_tenant"
    assert admin.accounts.delete("sdk_tenant").message == "Account sdk_tenant deleted successfully"
    with pytest.raises(NotFoundError):
        admin.accounts.describe("sdk_tenant")


def test_plugins_kind_resource(admin: Smarter) -> None:
    example = admin.plugins.example_manifest()
    sam(example)
    assert "properties" in admin.plugins.json_schema()
    manifest = applicable_example(admin, "Plugin", "sdk_plugin")
    assert admin.plugins.apply(manifest).message == "Plugin sdk_plugin applied successfully"
    described = admin.plugins.describe("sdk_plugin")  # finds the plugin's kind through the REST list
    assert sam(described).spec.selector.directive == manifest.spec["selector"]["directive"]
    plugin = admin.plugins.find("sdk_plugin")
    assert admin.plugins.retrieve(plugin.id).metadata.name == "sdk_plugin"
    assert admin.plugins.delete("sdk_plugin").message == "Plugin sdk_plugin deleted successfully"
    with pytest.raises(NotFoundError):
        admin.manifests.describe("Plugin", "sdk_plugin")
