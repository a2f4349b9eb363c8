"""The official SDK (`smarter-api==0.6.0`) against a live server: `client.manifests.apply/describe/delete` (and
the other verbs) for `SqlConnection` and `ApiConnection`, described manifests parsed by the SDK's SAM models."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from smarter import Smarter
from smarter.core.exceptions import BadRequestError, NotFoundError, UnprocessableEntityError
from smarter.models.manifest import Manifest
from smarter.models.sam import SAM_MODELS

from tests import support
from tests.live import LiveServer, live_server

pytestmark = pytest.mark.slow

KINDS = ("SqlConnection", "ApiConnection")


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    url = asyncio.run(support.fresh_database_url())
    try:
        with live_server(url) as live:
            yield live
    finally:
        if url.startswith("postgresql"):
            asyncio.run(support.drop_postgres_database(url))


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Iterator[Smarter]:
    with Smarter(api_key=server.admin_key, base_url=server.base_url, max_retries=0, timeout=30) as client:
        yield client


def test_kinds_are_listed(admin: Smarter) -> None:
    assert set(KINDS) <= {info.api_kind for info in admin.kinds()}


@pytest.mark.parametrize("kind", KINDS)
def test_every_manifest_verb(admin: Smarter, kind: str) -> None:
    example = admin.manifests.example_manifest(kind)
    assert isinstance(example.to_sam(), SAM_MODELS[kind])
    assert admin.manifests.validate(example).valid is True
    assert {"apiVersion", "kind", "metadata", "spec"} <= set(admin.manifests.json_schema(kind)["properties"])
    document = example.model_dump(mode="json", exclude_none=True, exclude={"status"})
    name = f"sdk_{kind.lower()}"
    document["metadata"]["name"] = name
    manifest = Manifest.model_validate(document)

    applied = admin.manifests.apply(manifest)
    assert applied.message == f"{kind} {name} applied successfully"
    assert name in admin.manifests.get(kind).names

    described = admin.manifests.describe(kind, name)
    typed = described.to_sam()
    assert isinstance(typed, SAM_MODELS[kind])
    assert typed.status is not None
    assert typed.status.username == "admin"
    assert typed.status.account_number == "3141-5926-5359"
    assert typed.status.dependencies == []

    again = admin.manifests.apply(described)  # describe -> apply round-trips
    assert again.message == applied.message
    assert admin.manifests.describe(kind, name).spec == described.spec
    with pytest.raises(BadRequestError):
        admin.manifests.deploy(kind, name)

    assert admin.manifests.delete(kind, name).message == f"{kind} {name} deleted successfully"
    with pytest.raises(NotFoundError):
        admin.manifests.describe(kind, name)


def test_credentials_name_secrets(server: LiveServer, admin: Smarter) -> None:
    headers = {"Authorization": f"Token {server.admin_key}"}
    created = httpx.post(
        f"{server.base_url}/api/v1/secrets/", headers=headers, json={"name": "sdk_token", "value": "tok-value-x"}
    )
    assert created.status_code == 201, created.text
    document = admin.manifests.example_manifest("ApiConnection").model_dump(
        mode="json", exclude_none=True, exclude={"status"}
    )
    document["metadata"]["name"] = "sdk_with_token"
    document["spec"]["connection"].update(authMethod="token", apiKey="sdk_token")
    admin.manifests.apply(Manifest.model_validate(document))
    described = admin.manifests.describe("ApiConnection", "sdk_with_token")
    assert described.spec["connection"]["apiKey"] == "sdk_token"
    assert "tok-value-x" not in described.model_dump_json()
    document["spec"]["connection"]["apiKey"] = "no_such_secret"
    with pytest.raises(UnprocessableEntityError):
        admin.manifests.apply(Manifest.model_validate(document))
