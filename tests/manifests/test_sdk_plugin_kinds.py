"""The official SDK (`smarter-api==0.6.0`) against a live server: `SqlPlugin` and `ApiPlugin` end to end.

`client.kinds()` lists them; `client.plugins.apply/describe/delete/kind_of` and `client.manifests.*` work on
them; described manifests parse with the SDK's own `SAMSqlPlugin`/`SAMApiPlugin`; describe -> apply changes
nothing; the example manifests (the server's and tests/manifests/data/*.yaml) apply once their connections
exist; a connection's describe lists the plugins that use it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from smarter import Smarter
from smarter.core.exceptions import NotFoundError, UnprocessableEntityError
from smarter.models.manifest import Manifest
from smarter.models.sam.apiplugin import SAMApiPlugin
from smarter.models.sam.sqlplugin import SAMSqlPlugin

from tests import support
from tests.live import LiveServer, live_server

pytestmark = pytest.mark.slow

DATA = Path(__file__).parent / "data"
KINDS = {"SqlPlugin": ("SqlConnection", SAMSqlPlugin), "ApiPlugin": ("ApiConnection", SAMApiPlugin)}


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


def connection_named(client: Smarter, kind: str, name: str) -> None:
    """The server's example connection manifest of `kind`, applied as `name`."""
    document = client.manifests.example_manifest(kind).model_dump(mode="json", exclude_none=True, exclude={"status"})
    document["metadata"]["name"] = name
    client.manifests.apply(Manifest.model_validate(document))


def test_kinds_are_listed(admin: Smarter) -> None:
    assert {"SqlPlugin", "ApiPlugin"} <= {info.api_kind for info in admin.kinds()}


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_verb_through_the_sdk(admin: Smarter, kind: str) -> None:
    connection_kind, model = KINDS[kind]
    example = admin.manifests.example_manifest(kind)
    assert isinstance(example.to_sam(), model)
    assert admin.manifests.validate(example).valid is True
    connection = example.spec["connection"]
    connection_named(admin, connection_kind, connection)
    name = example.metadata.name

    applied = admin.plugins.apply(example)
    assert applied.message == f"{kind} {name} applied successfully"
    assert admin.plugins.kind_of(name) == kind
    assert admin.plugins.find(name).kind == kind
    assert name in admin.manifests.get(kind).names
    assert name not in admin.manifests.get("Plugin").names

    described = admin.plugins.describe(name)
    typed = described.to_sam()
    assert isinstance(typed, model)
    assert typed.spec.connection == connection
    assert typed.status is not None
    assert typed.status.accountNumber == "3141-5926-5359"
    data_field = "sqlData" if kind == "SqlPlugin" else "apiData"
    assert {k: v for k, v in described.spec[data_field].items() if v is not None} == example.spec[data_field]

    # describe -> apply round-trips: nothing changes, not even `modified`.
    assert admin.plugins.apply(described).message == applied.message
    again = admin.manifests.describe(kind, name)
    assert again.spec == described.spec
    assert again.status == described.status

    retrieved = admin.plugins.retrieve(admin.plugins.find(name).id)
    assert retrieved.kind == kind
    assert isinstance(retrieved.to_sam(), model)

    # The connection's describe lists the plugin; it cannot be deleted while used.
    dependencies = admin.manifests.describe(connection_kind, connection).status["dependencies"]
    assert {"kind": kind, "name": name} in dependencies

    assert admin.plugins.delete(name).message == f"{kind} {name} deleted successfully"
    with pytest.raises(NotFoundError):
        admin.manifests.describe(kind, name)
    admin.manifests.delete(connection_kind, connection)


@pytest.mark.parametrize(
    ("file", "kind", "connection"),
    [
        ("sql-plugin.yaml", "SqlPlugin", "crm_database"),
        ("api-plugin.yaml", "ApiPlugin", "weather_api"),
    ],
)
def test_example_files(admin: Smarter, file: str, kind: str, connection: str) -> None:
    path = str(DATA / file)
    with pytest.raises(UnprocessableEntityError):  # no such connection yet
        admin.manifests.apply(path)
    connection_named(admin, KINDS[kind][0], connection)
    assert admin.manifests.validate(path).valid is True
    applied = admin.manifests.apply(path)
    assert applied.metadata is not None
    assert (applied.metadata.command, applied.metadata.thing) == ("apply", kind)
    name = Manifest.model_validate(applied.model_extra["data"]).metadata.name  # type: ignore[index]
    assert isinstance(admin.manifests.describe(kind, name).to_sam(), KINDS[kind][1])
    admin.manifests.delete(kind, name)
    admin.manifests.delete(KINDS[kind][0], connection)
