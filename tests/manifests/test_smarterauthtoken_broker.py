"""The `SmarterAuthToken` manifest broker (API keys): apply creates a real key and shows it once, applying
again never does; describe/get/delete use the ownership scope; deploy/undeploy (de)activate, and
authentication follows. Tested on the broker directly, then through `/api/v1/cli/`.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import yaml
from smarter.models.sam.smarterauthtoken import SAMSmarterAuthToken
from sqlalchemy import func, select

from app.errors import Forbidden, NotFound, Unauthorized, Unprocessable
from app.models import Account, ApiKey, Tag, User
from app.runtime import Runtime
from app.schemas.manifests.smarterauthtoken import SmarterAuthTokenManifest
from app.services import keys, principals, profiles, users
from app.services.api_keys import APPLY_NOT_STAFF, STAFF_ONLY, SUPERUSER_KEYS
from app.services.manifests import protocol, registry
from app.services.manifests.base import ApplyResult, BrokerContext
from app.services.manifests.smarterauthtoken import SmarterAuthTokenBroker
from tests.support import World, auth, unit_of_work

# Verbatim copy of the original's lib/drf/manifest/brokers/tests/data/auth-token.yaml.
AUTH_TOKEN_YAML = """\
apiVersion: smarter.sh/v1
kind: SmarterAuthToken
metadata:
  name: test_auth_token
  description: An example Smarter API manifest for a AuthToken
  version: 1.0.0
  tags:
    - test
    - auth
    - token
  annotations:
    - smarter.sh/test-auth-token/display-name: Test Auth Token
    - smarter.sh/test-auth-token/icon: https://example.com/test-auth-token-icon.png
    - smarter.sh/test-auth-token/documentation-url: https://docs.example.com/test-auth-token
spec:
  config:
    isActive: true
    username: admin
"""
NAME = "test_auth_token"
BROKER = SmarterAuthTokenBroker()
HEX64 = re.compile(r"[0-9a-f]{64}")
PROBE = "/api/v1/api-keys/"
CLI = "/api/v1/cli"
YAML_HEADERS = {"content-type": "application/x-yaml"}
GET_COLUMNS = {"keyId", "name", "description", "isActive", "lastUsedAt", "createdAt", "updatedAt"}


def verbatim(*, username: str | None = None, **metadata: Any) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(AUTH_TOKEN_YAML)
    if username is not None:
        document["spec"]["config"]["username"] = username
    document["metadata"].update(metadata)
    return document


def adapted_yaml(username: str) -> str:
    """The verbatim YAML, with a real staff username of the caller's account."""
    return AUTH_TOKEN_YAML.replace("username: admin", f"username: {username}")


@asynccontextmanager
async def broker_context(runtime: Runtime, world: World, actor: str) -> AsyncIterator[BrokerContext]:
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
    async with broker_context(runtime, world, actor) as ctx:
        return await BROKER.apply(ctx, SmarterAuthTokenManifest.model_validate(document))


async def describe(runtime: Runtime, world: World, actor: str, name: str = NAME) -> dict[str, Any]:
    async with broker_context(runtime, world, actor) as ctx:
        return await BROKER.describe(ctx, name)


async def get_rows(runtime: Runtime, world: World, actor: str, name: str | None = None) -> list[dict[str, Any]]:
    async with broker_context(runtime, world, actor) as ctx:
        return await BROKER.get(ctx, name)


async def keys_named(runtime: Runtime, name: str = NAME) -> list[ApiKey]:
    async with runtime.sessionmaker() as session:
        return list((await session.execute(select(ApiKey).where(ApiKey.name == name))).scalars())


async def key_count(runtime: Runtime) -> int:
    async with runtime.sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(ApiKey))).scalar_one())


async def status_with(client: httpx.AsyncClient, key: str) -> int:
    return (await client.get(PROBE, headers=auth(key))).status_code


async def authenticates(runtime: Runtime, key: str) -> bool:
    try:
        await principals.authenticate(runtime.reader, runtime.caches, keys.digest_of(key))
    except Unauthorized:
        return False
    return True


async def add_user(runtime: Runtime, username: str, account: Account, *, is_staff: bool = True) -> None:
    async with unit_of_work(runtime) as session:
        user = await users.create_user(session, username=username, email=f"{username}@example.com", is_staff=is_staff)
        await profiles.add_profile(session, user, account)


async def add_admin_to(runtime: Runtime, world: World, account: Account) -> None:
    async with unit_of_work(runtime) as session:
        admin = await session.get(User, world["superuser"].user.id)
        assert admin is not None
        await profiles.add_profile(session, admin, account)


# --- the kind -----------------------------------------------------------------------------------------------


async def test_registered_under_every_spelling() -> None:
    for segment in ("SmarterAuthToken", "smarterauthtokens", "smarter_auth_token", "SMARTERAUTHTOKEN"):
        assert registry.resolve(segment).kind == "SmarterAuthToken"
    assert BROKER.deployable is True
    assert {c.name for c in BROKER.columns} == GET_COLUMNS


async def test_the_verbatim_manifest_validates_against_the_sdk_and_ours() -> None:
    document = verbatim()
    sdk = SAMSmarterAuthToken.model_validate(document)
    ours = SmarterAuthTokenManifest.model_validate(document)
    assert (ours.metadata.name, ours.spec.config.username, ours.spec.config.is_active) == (NAME, "admin", True)
    assert sdk.spec.config.isActive is True
    # isActive defaults to False, as in the SDK; username is required.
    del document["spec"]["config"]["isActive"]
    assert SmarterAuthTokenManifest.model_validate(document).spec.config.is_active is False
    del document["spec"]["config"]["username"]
    with pytest.raises(ValueError, match="username"):
        SmarterAuthTokenManifest.model_validate(document)


async def test_example_manifest(world: World, runtime: Runtime) -> None:
    example = BROKER.example_manifest()
    SAMSmarterAuthToken.model_validate(example)
    manifest = SmarterAuthTokenManifest.model_validate(example)
    # As is, it applies for `admin`, the one user every deployment has.
    result = await apply(runtime, world, "superuser", example)
    assert (result.created, result.name) == (True, manifest.metadata.name)
    assert await authenticates(runtime, result.data["key"])
    # Staff put a staff username of their account in it.
    example["spec"]["config"]["username"] = "staff_a"
    result = await apply(runtime, world, "staff_a", example)
    assert result.created is True
    assert await authenticates(runtime, result.data["key"])


# --- apply ----------------------------------------------------------------------------------------------------


async def test_apply_verbatim_creates_a_real_key_shown_once(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    result = await apply(runtime, world, "superuser", verbatim())
    assert (result.created, result.name) == (True, NAME)
    key = result.data["key"]
    assert HEX64.fullmatch(key)
    assert await status_with(client, key) == 200
    [row] = await keys_named(runtime)
    assert (row.digest, row.token_key, row.kind) == (keys.digest_of(key), key[:15], "api_key")
    assert (row.user_id, row.user_profile_id, row.account_id) == (
        world["superuser"].user.id,
        world["superuser"].profile.id,
        world.platform.id,
    )
    assert (row.description, row.version, row.is_active) == (
        "An example Smarter API manifest for a AuthToken",
        "1.0.0",
        True,
    )
    assert row.annotations[0] == {"smarter.sh/test-auth-token/display-name": "Test Auth Token"}
    async with runtime.sessionmaker() as session:
        assert set((await session.execute(select(Tag.name))).scalars()) >= {"test", "auth", "token"}
    # The result is the manifest, which the SDK's model accepts; the digest appears nowhere.
    manifest = {k: v for k, v in result.data.items() if k != "key"}
    assert SAMSmarterAuthToken.model_validate(manifest).spec.config.username == "admin"
    assert row.digest not in json.dumps(result.data)

    # Applying again: no new key, no key shown, the same digest; isActive and metadata follow.
    again = await apply(runtime, world, "superuser", verbatim(description="changed"))
    assert again.created is False
    assert "key" not in again.data
    assert again.data["metadata"]["description"] == "changed"
    [same] = await keys_named(runtime)
    assert (same.id, same.digest, same.description) == (row.id, row.digest, "changed")
    document = verbatim()
    document["spec"]["config"]["isActive"] = False
    off = await apply(runtime, world, "superuser", document)
    assert (off.created, off.data["spec"]["config"]["isActive"]) == (False, False)
    assert await status_with(client, key) == 401
    on = await apply(runtime, world, "superuser", verbatim())
    assert on.data["spec"]["config"]["isActive"] is True
    assert await status_with(client, key) == 200
    assert await key_count(runtime) == 7  # the world's 6 and this one


async def test_applying_the_same_manifest_twice_changes_nothing(world: World, runtime: Runtime) -> None:
    first = await apply(runtime, world, "staff_a", verbatim(username="staff_a"))
    second = await apply(runtime, world, "staff_a", verbatim(username="staff_a"))
    assert second.created is False
    assert second.data == {k: v for k, v in first.data.items() if k != "key"}  # not even `modified` moved


async def test_apply_without_is_active_makes_an_inactive_key(world: World, runtime: Runtime) -> None:
    document = verbatim(username="staff_a")
    del document["spec"]["config"]["isActive"]
    result = await apply(runtime, world, "staff_a", document)
    assert result.data["spec"]["config"]["isActive"] is False
    assert not await authenticates(runtime, result.data["key"])


async def test_apply_by_staff_for_staff_of_their_account(world: World, runtime: Runtime) -> None:
    await add_user(runtime, "staff_a2", world.account_a)
    mine = await apply(runtime, world, "staff_a", verbatim(username="staff_a"))
    theirs = await apply(runtime, world, "staff_a", verbatim(username="staff_a2"))
    assert mine.created
    assert theirs.created
    rows = {row.user_id: row for row in await keys_named(runtime)}
    assert {row.account_id for row in rows.values()} == {world.account_a.id}
    assert len(rows) == 2
    assert await authenticates(runtime, theirs.data["key"])


async def test_apply_permissions(world: World, runtime: Runtime) -> None:
    for actor in ("regular_a", "regular_b", "multi"):
        with pytest.raises(Forbidden, match=APPLY_NOT_STAFF):
            await apply(runtime, world, actor, verbatim(username=actor))
    # Another tenant's user, an unknown user, and the superuser outside A: 404 for staff of A.
    for username in ("staff_b", "nobody", "admin"):
        with pytest.raises(NotFound):
            await apply(runtime, world, "staff_a", verbatim(username=username))
    # A non-staff user of the account: 422.
    with pytest.raises(Unprocessable, match=STAFF_ONLY):
        await apply(runtime, world, "staff_a", verbatim(username="regular_a"))
    # The superuser as a member of A: visible, but only a superuser makes keys for a superuser.
    await add_admin_to(runtime, world, world.account_a)
    with pytest.raises(Forbidden, match=SUPERUSER_KEYS):
        await apply(runtime, world, "staff_a", verbatim(username="admin"))
    # The superuser acts in the platform account, where staff_a has no profile.
    with pytest.raises(Unprocessable, match="has no profile in account"):
        await apply(runtime, world, "superuser", verbatim(username="staff_a"))
    assert await keys_named(runtime) == []


# --- describe / get -------------------------------------------------------------------------------------------


async def test_describe(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    created = await apply(runtime, world, "staff_a", verbatim(username="staff_a"))
    described = await describe(runtime, world, "staff_a")
    sam = SAMSmarterAuthToken.model_validate(described)
    assert sam.status is not None
    [row] = await keys_named(runtime)
    assert sam.status.recordLocator == f"smarterauthtoken-{row.hashed_id}"
    assert sam.status.lastUsedAt is None
    assert (sam.metadata.name, sam.spec.config.username, sam.spec.config.isActive) == (NAME, "staff_a", True)
    assert described["metadata"]["tags"] == ["auth", "test", "token"]
    assert described["status"]["dependencies"] == []
    text = json.dumps(described)
    assert row.digest not in text
    assert created.data["key"] not in text
    # Used once: lastUsedAt shows it.
    assert await status_with(client, created.data["key"]) == 200
    assert (await describe(runtime, world, "staff_a"))["status"]["lastUsedAt"] is not None
    # The describe result applies as is (status ignored) and changes nothing.
    again = await apply(runtime, world, "staff_a", described)
    assert again.created is False


@pytest.mark.parametrize("actor", ["staff_b", "regular_a", "regular_b", "multi"])
async def test_describe_outside_the_ownership_scope_is_404(world: World, runtime: Runtime, actor: str) -> None:
    await apply(runtime, world, "staff_a", verbatim(username="staff_a"))
    with pytest.raises(NotFound):
        await describe(runtime, world, actor)
    assert (await describe(runtime, world, "superuser"))["spec"]["config"]["username"] == "staff_a"


async def test_get_rows_and_scope(world: World, runtime: Runtime) -> None:
    await apply(runtime, world, "staff_a", verbatim(username="staff_a"))
    await apply(runtime, world, "staff_b", verbatim(username="staff_b", name="b_key"))
    rows = await get_rows(runtime, world, "staff_a")
    assert [r["name"] for r in rows] == [NAME, "staff_a_key"]
    assert all(set(r) == GET_COLUMNS for r in rows)
    assert rows[0]["isActive"] is True
    assert [r["name"] for r in await get_rows(runtime, world, "staff_a", "Test Auth Token")] == [NAME]
    assert await get_rows(runtime, world, "staff_a", "b_key") == []
    names = {r["name"] for r in await get_rows(runtime, world, "superuser")}
    assert names == {NAME, "b_key", "staff_a_key", "staff_b_key", "admin_bootstrap_key"}
    for actor in ("regular_a", "regular_b", "multi"):
        assert await get_rows(runtime, world, actor) == []  # login tokens are never listed
    with pytest.raises(Unprocessable):
        await get_rows(runtime, world, "staff_a", "!!!")


# --- deploy / undeploy / delete ---------------------------------------------------------------------------------


async def test_deploy_and_undeploy_flip_authentication(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    key = (await apply(runtime, world, "staff_a", verbatim(username="staff_a"))).data["key"]
    assert await status_with(client, key) == 200  # cached
    async with broker_context(runtime, world, "staff_a") as ctx:
        message = await BROKER.undeploy(ctx, NAME)
    assert message == f"SmarterAuthToken {NAME} undeployed successfully: the key is deactivated"
    assert await status_with(client, key) == 401
    assert (await describe(runtime, world, "staff_a"))["spec"]["config"]["isActive"] is False
    async with broker_context(runtime, world, "staff_a") as ctx:
        message = await BROKER.deploy(ctx, NAME)
    assert message == f"SmarterAuthToken {NAME} deployed successfully: the key is active"
    assert await status_with(client, key) == 200
    for actor in ("staff_b", "regular_a"):
        async with broker_context(runtime, world, actor) as ctx:
            with pytest.raises(NotFound):
                await BROKER.undeploy(ctx, NAME)
    assert await status_with(client, key) == 200


async def test_staff_cannot_undeploy_or_delete_a_superusers_key(world: World, runtime: Runtime) -> None:
    await add_admin_to(runtime, world, world.account_a)
    async with broker_context(runtime, world, "superuser") as ctx:
        ctx = await protocol.broker_context(
            ctx.session,
            ctx.principal,
            ctx.settings,
            account_number=world.account_a.account_number,
            reader=ctx.reader,
            caches=ctx.caches,
        )
        key = (await BROKER.apply(ctx, SmarterAuthTokenManifest.model_validate(verbatim()))).data["key"]
    assert (await describe(runtime, world, "staff_a"))["spec"]["config"]["username"] == "admin"
    for action in (BROKER.undeploy, BROKER.delete):
        async with broker_context(runtime, world, "staff_a") as ctx:
            with pytest.raises(Forbidden, match=SUPERUSER_KEYS):
                await action(ctx, NAME)
    assert await authenticates(runtime, key)


async def test_delete(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    key = (await apply(runtime, world, "staff_a", verbatim(username="staff_a"))).data["key"]
    assert await status_with(client, key) == 200
    for actor in ("staff_b", "regular_a", "multi"):
        async with broker_context(runtime, world, actor) as ctx:
            with pytest.raises(NotFound):
                await BROKER.delete(ctx, NAME)
    async with broker_context(runtime, world, "staff_a") as ctx:
        await BROKER.delete(ctx, NAME)
    assert await keys_named(runtime) == []
    assert await status_with(client, key) == 401
    with pytest.raises(NotFound):
        await describe(runtime, world, "staff_a")
    async with broker_context(runtime, world, "staff_a") as ctx:
        with pytest.raises(NotFound):
            await BROKER.delete(ctx, NAME)


# --- through /api/v1/cli/ -------------------------------------------------------------------------------------


async def cli(client: httpx.AsyncClient, world: World, actor: str, command: str, **kwargs: Any) -> httpx.Response:
    return await client.post(
        f"{CLI}/{command}", headers={**world[actor].headers, **kwargs.pop("headers", {})}, **kwargs
    )


async def test_verbatim_yaml_through_the_cli(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    body = adapted_yaml("staff_a").encode()
    response = await cli(client, world, "staff_a", "apply/", content=body, headers=YAML_HEADERS)
    assert response.status_code == 200, response.text
    envelope = response.json()
    assert envelope["message"] == f"SmarterAuthToken {NAME} applied successfully"
    assert envelope["metadata"] == {"command": "apply", "thing": "SmarterAuthToken"}
    key = envelope["data"]["key"]
    assert HEX64.fullmatch(key)
    assert await status_with(client, key) == 200

    again = await cli(client, world, "staff_a", "apply/", content=body, headers=YAML_HEADERS)
    assert again.status_code == 200
    assert "key" not in again.json()["data"]
    assert key not in again.text
    assert len(await keys_named(runtime)) == 1

    undeployed = await cli(client, world, "staff_a", "undeploy/smarter_auth_token/", params={"name": NAME})
    assert undeployed.status_code == 200, undeployed.text
    assert undeployed.json()["metadata"] == {"command": "undeploy", "thing": "SmarterAuthToken"}
    assert await status_with(client, key) == 401
    deployed = await cli(client, world, "staff_a", "deploy/SmarterAuthTokens/", params={"name": NAME})
    assert deployed.status_code == 200
    assert await status_with(client, key) == 200

    table = (await cli(client, world, "staff_a", "get/smarterauthtoken/", params={"name": NAME})).json()["data"]
    assert [item["name"] for item in table["data"]["items"]] == [NAME]
    assert {t["name"] for t in table["data"]["titles"]} == GET_COLUMNS
    described = await client.get(
        f"{CLI}/describe/smarterauthtoken/", params={"name": NAME}, headers=world["staff_a"].headers
    )
    assert described.status_code == 200
    SAMSmarterAuthToken.model_validate(described.json()["data"])
    assert key not in described.text

    # Another tenant's staff cannot see it; a regular user cannot apply at all.
    other = await cli(client, world, "staff_b", "describe/smarterauthtoken/", params={"name": NAME})
    assert other.status_code == 404
    assert other.json()["error"]["status"] == 404
    refused = await cli(
        client, world, "regular_a", "apply/", content=adapted_yaml("regular_a").encode(), headers=YAML_HEADERS
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["description"] == APPLY_NOT_STAFF
    cross = await cli(
        client, world, "staff_a", "apply/", content=adapted_yaml("staff_b").encode(), headers=YAML_HEADERS
    )
    assert cross.status_code == 404

    deleted = await cli(client, world, "staff_a", "delete/smarterauthtoken/", params={"name": NAME})
    assert deleted.status_code == 200
    assert deleted.json()["message"] == f"SmarterAuthToken {NAME} deleted successfully"
    assert await status_with(client, key) == 401
    assert (await cli(client, world, "staff_a", "describe/smarterauthtoken/", params={"name": NAME})).status_code == 404


async def test_example_manifest_through_the_cli(client: httpx.AsyncClient, world: World) -> None:
    response = await cli(client, world, "superuser", "example-manifest/smarterauthtoken/")
    assert response.status_code == 200
    example = response.json()["data"]
    SAMSmarterAuthToken.model_validate(example)
    validated = await cli(client, world, "superuser", "validate/", json=example)
    assert validated.json()["data"]["valid"] is True
    applied = await cli(client, world, "superuser", "apply/", json=example)
    assert applied.status_code == 200, applied.text
    assert HEX64.fullmatch(applied.json()["data"]["key"])
