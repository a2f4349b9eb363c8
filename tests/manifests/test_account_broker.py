"""The `Account` manifest broker: the original's account.yaml applied (twice), described, listed and deleted;
superuser-only writes, the read-only account number, `status.adminAccount` (never creating a user), and the
same rules and validators as the REST API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from smarter.models.manifest import ManifestList
from smarter.models.sam.account import SAMAccount
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from app.errors import BadRequest, Conflict, Forbidden, NotFound, Unprocessable
from app.identifiers import PLATFORM_ACCOUNT_NUMBER, hashed_id
from app.models import Account, User
from app.runtime import Runtime
from app.schemas.manifests.account import AccountManifest
from app.services import keys, principals, profiles, users
from app.services.manifests import protocol, registry
from app.services.manifests.account import AccountBroker
from app.services.manifests.base import ApplyResult, BrokerContext
from tests.support import World, unit_of_work

# Verbatim copy of the original's apps/account/manifest/brokers/tests/data/account.yaml.
ACCOUNT_YAML = b"""apiVersion: smarter.sh/v1
kind: Account
metadata:
  accountNumber: 1234-5678-9012
  description: an example Account manifest
  name: example_account
  version: 1.0.0
  tags:
    - production
    - backend
    - mcdaniel
  annotations:
    - smarter.sh/created-by: mcdaniel
    - smarter.sh/project: smarter-sh
spec:
  config:
    address1: 1 Main St
    address2: Suite 100
    city: Cambridge
    companyName: Humble Geniuses, Inc.
    country: US
    currency: USD
    language: en-US
    phoneNumber: 617-555-1212
    postalCode: 02139
    state: MA
    timezone: America/New_York
"""
BROKER = AccountBroker()
CLI = "/api/v1/cli"
YAML = {"Content-Type": "application/x-yaml"}


async def verbatim(**config: Any) -> dict[str, Any]:
    """The YAML as the protocol reads it, with `spec.config` changes (None removes a key)."""
    document = await protocol.parse_document(ACCOUNT_YAML, "application/x-yaml")
    for key, value in config.items():
        if value is None:
            document["spec"]["config"].pop(key, None)
        else:
            document["spec"]["config"][key] = value
    return document


@asynccontextmanager
async def context(runtime: Runtime, world: World, actor: str) -> AsyncIterator[BrokerContext]:
    """A unit of work acting as `actor` (committed at the end, like a request)."""
    principal = await principals.authenticate(runtime.reader, runtime.caches, keys.digest_of(world[actor].key))
    async with unit_of_work(runtime) as session:
        yield await protocol.broker_context(
            session,
            principal,
            runtime.settings,
            account_number=None,
            reader=runtime.reader,
            caches=runtime.caches,
        )


async def apply(runtime: Runtime, world: World, actor: str, document: dict[str, Any]) -> ApplyResult:
    async with context(runtime, world, actor) as ctx:
        return await BROKER.apply(ctx, AccountManifest.model_validate(document))


async def describe(runtime: Runtime, world: World, actor: str, name: str) -> dict[str, Any]:
    async with context(runtime, world, actor) as ctx:
        return await BROKER.describe(ctx, name)


async def account_named(runtime: Runtime, name: str) -> Account | None:
    async with runtime.sessionmaker() as session:
        statement = select(Account).where(Account.name == name).options(selectinload(Account.tag_links))
        return (await session.execute(statement)).scalar_one_or_none()


async def count(runtime: Runtime, model: type[Any]) -> int:
    async with runtime.sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


# --- apply ---------------------------------------------------------------------------------------------------


async def test_registered_under_every_spelling() -> None:
    for segment in ("Account", "accounts", "ACCOUNT", "account"):
        assert registry.resolve(segment).kind == "Account"
    assert registry.resolve("account").deployable is False


async def test_verbatim_manifest_applied_twice_is_idempotent(world: World, runtime: Runtime) -> None:
    first = await apply(runtime, world, "superuser", await verbatim())
    assert (first.created, first.name) == (True, "example_account")
    account = await account_named(runtime, "example_account")
    assert account is not None
    assert account.account_number == "1234-5678-9012"
    assert (account.company_name, account.address1, account.address2, account.city, account.state) == (
        "Humble Geniuses, Inc.",
        "1 Main St",
        "Suite 100",
        "Cambridge",
        "MA",
    )
    assert (account.postal_code, account.phone_number) == ("02139", "617-555-1212")
    assert (account.country, account.language, account.timezone, account.currency) == (
        "US",
        "en-US",
        "America/New_York",
        "USD",
    )
    assert (account.description, account.version) == ("an example Account manifest", "1.0.0")
    assert account.tags == ["backend", "mcdaniel", "production"]
    assert account.annotations == [{"smarter.sh/created-by": "mcdaniel"}, {"smarter.sh/project": "smarter-sh"}]
    assert (account.is_active, account.is_default_account) == (True, False)

    second = await apply(runtime, world, "superuser", await verbatim())
    assert (second.created, second.name) == (False, "example_account")
    assert second.data == first.data  # nothing changed, not even `modified`
    again = await account_named(runtime, "example_account")
    assert again is not None
    assert again.updated_at == account.updated_at
    assert await count(runtime, Account) == 4


async def test_apply_brings_the_account_to_the_manifest(world: World, runtime: Runtime) -> None:
    await apply(runtime, world, "superuser", await verbatim())
    changed = await verbatim(companyName="Humble Geniuses, LLC", city=None, timezone=None, country="FRA")
    changed["metadata"]["tags"] = ["moved"]
    changed["metadata"].pop("accountNumber")  # left out: the number is kept
    result = await apply(runtime, world, "superuser", changed)
    assert result.created is False
    config = result.data["spec"]["config"]
    # What the manifest leaves out takes the SDK's defaults (None for the address fields).
    assert (config["companyName"], config["city"], config["timezone"], config["country"]) == (
        "Humble Geniuses, LLC",
        None,
        "America/New_York",
        "FRA",
    )
    assert result.data["metadata"]["tags"] == ["moved"]
    assert result.data["metadata"]["accountNumber"] == "1234-5678-9012"
    account = await account_named(runtime, "example_account")
    assert account is not None
    assert (account.company_name, account.city, account.tags) == ("Humble Geniuses, LLC", None, ["moved"])
    assert result.data["status"]["modified"] > result.data["status"]["created"]


async def test_defaults_are_the_sdks(world: World, runtime: Runtime) -> None:
    document = await verbatim(country=None, currency=None, language=None, timezone=None)
    document["metadata"] = {"name": "Defaults Co", "description": None, "version": None}
    result = await apply(runtime, world, "superuser", document)
    assert result.name == "defaults_co"
    config = result.data["spec"]["config"]
    assert (config["country"], config["currency"], config["language"], config["timezone"]) == (
        "US",
        "USD",
        "en-US",
        "America/New_York",
    )
    metadata = result.data["metadata"]
    assert (metadata["description"], metadata["version"], metadata["tags"], metadata["annotations"]) == (
        "",
        "1.0.0",
        [],
        [],
    )
    number = metadata["accountNumber"]
    assert number not in ("1234-5678-9012", PLATFORM_ACCOUNT_NUMBER)
    assert len(number) == 14


@pytest.mark.parametrize("actor", ["staff_a", "regular_a", "staff_b", "multi"])
async def test_only_superusers_apply(world: World, runtime: Runtime, actor: str) -> None:
    with pytest.raises(Forbidden, match=r"Only a superuser can apply Account manifests\."):
        await apply(runtime, world, actor, await verbatim())
    # Not even to their own account.
    own = await verbatim()
    own["metadata"] = {"name": "tenant_a", "description": "mine", "version": "1.0.0"}
    with pytest.raises(Forbidden):
        await apply(runtime, world, actor, own)
    assert await account_named(runtime, "example_account") is None
    tenant_a = await account_named(runtime, "tenant_a")
    assert tenant_a is not None
    assert tenant_a.description == ""


async def test_account_number_is_read_only(world: World, runtime: Runtime) -> None:
    await apply(runtime, world, "superuser", await verbatim())
    other = await verbatim()
    other["metadata"]["accountNumber"] = "9999-8888-7777"
    with pytest.raises(Unprocessable) as refused:
        await apply(runtime, world, "superuser", other)
    assert refused.value.errors is not None
    assert refused.value.errors[0].loc == ["body", "metadata", "accountNumber"]
    account = await account_named(runtime, "example_account")
    assert account is not None
    assert account.account_number == "1234-5678-9012"

    # An existing account's own number (even the platform's) is accepted.
    platform = await verbatim(companyName="Smarter")
    platform["metadata"].update(name="smarter_platform", accountNumber=PLATFORM_ACCOUNT_NUMBER)
    assert (await apply(runtime, world, "superuser", platform)).created is False
    platform["metadata"]["accountNumber"] = world.account_a.account_number
    with pytest.raises(Unprocessable):
        await apply(runtime, world, "superuser", platform)


async def test_a_new_account_takes_a_given_number_only_when_unused(world: World, runtime: Runtime) -> None:
    document = await verbatim()
    document["metadata"].update(name="second", accountNumber=world.account_a.account_number)
    with pytest.raises(Conflict, match=r"An account with this account number already exists\."):
        await apply(runtime, world, "superuser", document)
    assert await account_named(runtime, "second") is None
    for bad in ("123456789012", "1234-5678-901x", "1234-5678-9012\n"):
        document["metadata"]["accountNumber"] = bad
        with pytest.raises(ValidationError):
            AccountManifest.model_validate(document)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "config", "companyName"), None),
        (("spec", "config", "companyName"), ""),
        (("spec", "config", "country"), "usa"),
        (("spec", "config", "currency"), "Dollars"),
        (("spec", "config", "language"), "English"),
        (("spec", "config", "timezone"), "Mars/Olympus"),
        (("spec", "config", "isActive"), False),
        (("spec", "config", "isDefaultAccount"), True),
        (("metadata", "name"), "\n"),
        (("metadata", "version"), "1.0"),
        (("kind",), "Accounts"),
    ],
)
async def test_invalid_manifests_are_refused(path: tuple[str, ...], value: Any) -> None:
    document = await verbatim()
    target = document
    for key in path[:-1]:
        target = target[key]
    if value is None:
        target.pop(path[-1])
    else:
        target[path[-1]] = value
    with pytest.raises(ValidationError) as refused:
        AccountManifest.model_validate(document)
    assert any(error["loc"][: len(path)] == path for error in refused.value.errors())


# --- describe, get, delete --------------------------------------------------------------------------------------


async def test_describe_is_an_sdk_account_manifest(world: World, runtime: Runtime) -> None:
    applied = await apply(runtime, world, "superuser", await verbatim())
    described = await describe(runtime, world, "superuser", "Example Account")  # names are normalised
    assert described == applied.data
    sam = SAMAccount.model_validate(described)
    assert sam.metadata.accountNumber == "1234-5678-9012"
    assert sam.spec.config.companyName == "Humble Geniuses, Inc."
    assert sam.status is not None
    account = await account_named(runtime, "example_account")
    assert account is not None
    assert sam.status.recordLocator == f"account-{hashed_id(account.id)}"
    assert sam.status.created == account.created_at
    assert sam.status.modified == account.updated_at
    assert sam.status.adminAccount == ""  # nobody belongs to it yet, and describing creates nobody
    assert described["status"]["dependencies"] == []
    assert await count(runtime, User) == len(world.actors)
    # A describe result applies as is (its status is ignored).
    assert (await apply(runtime, world, "superuser", described)).created is False


async def test_admin_account_is_the_first_staff_user_else_the_first_user(world: World, runtime: Runtime) -> None:
    async def admin_of(name: str) -> str:
        return str((await describe(runtime, world, "superuser", name))["status"]["adminAccount"])

    async def join(username: str, *, is_staff: bool) -> None:
        async with unit_of_work(runtime) as session:
            account = (await session.execute(select(Account).where(Account.name == "example_account"))).scalar_one()
            user = await users.create_user(session, username=username, is_staff=is_staff)
            await profiles.add_profile(session, user, account)

    assert await admin_of("tenant_a") == "staff_a"
    assert await admin_of("smarter_platform") == "admin"
    await apply(runtime, world, "superuser", await verbatim())
    await join("zed_regular", is_staff=False)
    assert await admin_of("example_account") == "zed_regular"
    await join("zzz_regular", is_staff=False)
    assert await admin_of("example_account") == "zed_regular"  # the first user by id, not by name
    await join("amy_staff", is_staff=True)
    await join("aaa_staff", is_staff=True)
    # The first staff user by id, even though regular users joined before.
    assert await admin_of("example_account") == "amy_staff"


async def test_describe_follows_the_rest_scope(world: World, runtime: Runtime) -> None:
    for actor in ("staff_a", "regular_a", "multi"):
        described = await describe(runtime, world, actor, "tenant_a")
        assert described["metadata"]["accountNumber"] == world.account_a.account_number
    for actor, name in (("staff_a", "tenant_b"), ("regular_b", "smarter_platform"), ("staff_b", "nobody")):
        with pytest.raises(NotFound, match="No Account named"):
            await describe(runtime, world, actor, name)
    with pytest.raises(Unprocessable):
        await describe(runtime, world, "superuser", "!!!")


async def test_get_lists_what_the_caller_can_read(world: World, runtime: Runtime) -> None:
    await apply(runtime, world, "superuser", await verbatim())
    async with context(runtime, world, "superuser") as ctx:
        rows = await BROKER.get(ctx, None)
        only = await BROKER.get(ctx, "Example Account")
        none = await BROKER.get(ctx, "nobody")
    assert [r["name"] for r in rows] == ["example_account", "tenant_b", "tenant_a", "smarter_platform"]
    assert set(rows[0]) == {c.name for c in BROKER.columns}
    assert only == [rows[0]]
    assert only[0]["accountNumber"] == "1234-5678-9012"
    assert (only[0]["companyName"], only[0]["isDefaultAccount"], only[0]["isActive"]) == (
        "Humble Geniuses, Inc.",
        False,
        True,
    )
    assert rows[-1]["isDefaultAccount"] is True
    assert none == []
    async with context(runtime, world, "staff_a") as ctx:
        assert [r["name"] for r in await BROKER.get(ctx, None)] == ["tenant_a"]
        assert await BROKER.get(ctx, "example_account") == []
    async with context(runtime, world, "multi") as ctx:
        assert [r["name"] for r in await BROKER.get(ctx, None)] == ["tenant_b", "tenant_a"]


async def test_delete(world: World, runtime: Runtime) -> None:
    await apply(runtime, world, "superuser", await verbatim())
    cases: list[tuple[str, str, type[Exception]]] = [
        ("staff_a", "tenant_a", Forbidden),
        ("regular_a", "tenant_a", Forbidden),
        ("staff_b", "tenant_a", NotFound),
        ("staff_a", "example_account", NotFound),
        ("superuser", "smarter_platform", Conflict),
        ("superuser", "nobody", NotFound),
    ]
    for actor, name, error in cases:
        with pytest.raises(error):
            async with context(runtime, world, actor) as ctx:
                await BROKER.delete(ctx, name)
    for name in ("tenant_a", "example_account", "smarter_platform"):
        assert await account_named(runtime, name) is not None

    async with context(runtime, world, "superuser") as ctx:
        await BROKER.delete(ctx, "Example Account")
    assert await account_named(runtime, "example_account") is None
    with pytest.raises(NotFound):
        await describe(runtime, world, "superuser", "example_account")
    # The number is free again.
    assert (await apply(runtime, world, "superuser", await verbatim())).created is True


async def test_accounts_cannot_be_deployed(world: World, runtime: Runtime) -> None:
    await apply(runtime, world, "superuser", await verbatim())
    async with context(runtime, world, "superuser") as ctx:
        with pytest.raises(BadRequest, match=r"Account resources cannot be deployed\."):
            await BROKER.deploy(ctx, "example_account")
        with pytest.raises(BadRequest, match=r"Account resources cannot be undeployed\."):
            await BROKER.undeploy(ctx, "example_account")


async def test_example_manifest_validates_and_applies(world: World, runtime: Runtime) -> None:
    example = BROKER.example_manifest()
    SAMAccount.model_validate(example)
    first = await apply(runtime, world, "superuser", example)
    assert first.created is True
    SAMAccount.model_validate(first.data)
    again = await apply(runtime, world, "superuser", example)
    assert again.created is False
    assert again.data == first.data
    # It lives beside the original's example.
    assert (await apply(runtime, world, "superuser", await verbatim())).created is True
    schema = BROKER.json_schema()
    assert {"apiVersion", "kind", "metadata", "spec"} <= set(schema["properties"])


# --- over HTTP ------------------------------------------------------------------------------------------------


async def test_verbatim_yaml_over_http(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    headers = {**world["superuser"].headers, **YAML}
    first = await client.post(f"{CLI}/apply/", content=ACCOUNT_YAML, headers=headers)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["message"] == "Account example_account applied successfully"
    assert body["metadata"] == {"command": "apply", "thing": "Account"}
    again = await client.post(f"{CLI}/apply/", content=ACCOUNT_YAML, headers=headers)
    assert again.status_code == 200
    assert again.json()["data"] == body["data"]

    described = await client.get(f"{CLI}/describe/accounts/", params={"name": "example_account"}, headers=headers)
    assert described.status_code == 200, described.text
    status = SAMAccount.model_validate(described.json()["data"]).status
    assert status is not None
    assert status.adminAccount == ""
    listed = await client.post(f"{CLI}/get/Account/", params={"name": "example_account"}, headers=headers)
    assert listed.status_code == 200
    table = ManifestList.model_validate(listed.json()["data"])
    assert table.metadata.count == 1
    assert table.data.items[0]["accountNumber"] == "1234-5678-9012"

    # The REST API shows the same account, and the manifest's rules are the REST API's.
    rest = await client.get("/api/v1/accounts/1234-5678-9012/", headers=world["superuser"].headers)
    assert rest.json()["companyName"] == "Humble Geniuses, Inc."

    staff = await client.post(f"{CLI}/apply/", content=ACCOUNT_YAML, headers={**world["staff_a"].headers, **YAML})
    assert staff.status_code == 403
    assert staff.json()["error"]["status"] == 403
    assert staff.json()["metadata"] == {"command": "apply", "thing": "Account"}
    moved = ACCOUNT_YAML.replace(b"1234-5678-9012", b"1234-5678-9013")
    refused = await client.post(f"{CLI}/apply/", content=moved, headers=headers)
    assert refused.status_code == 422
    deploy = await client.post(f"{CLI}/deploy/account/", params={"name": "example_account"}, headers=headers)
    assert deploy.status_code == 400
    platform = await client.post(f"{CLI}/delete/account/", params={"name": "smarter_platform"}, headers=headers)
    assert platform.status_code == 409

    deleted = await client.post(f"{CLI}/delete/Account/", params={"name": "example_account"}, headers=headers)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["message"] == "Account example_account deleted successfully"
    assert await account_named(runtime, "example_account") is None
    gone = await client.post(f"{CLI}/describe/Account/", params={"name": "example_account"}, headers=headers)
    assert gone.status_code == 404
    assert (await client.get("/api/v1/accounts/1234-5678-9012/", headers=world["superuser"].headers)).status_code == 404


async def test_example_manifest_over_http_passes_validate(client: httpx.AsyncClient, world: World) -> None:
    headers = world["superuser"].headers
    example = await client.post(f"{CLI}/example-manifest/account/", headers=headers)
    assert example.status_code == 200
    validated = await client.post(f"{CLI}/validate/", json=example.json()["data"], headers=headers)
    assert validated.json()["data"] == {"valid": True, "errors": []}
    applied = await client.post(f"{CLI}/apply/", json=example.json()["data"], headers=headers)
    assert applied.status_code == 200, applied.text
    assert applied.json()["message"] == "Account example_tenant applied successfully"
