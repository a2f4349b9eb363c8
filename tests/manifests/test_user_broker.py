"""The `User` manifest broker: the original's user.yaml applied (twice), described, listed and deleted, and the
tenant rules the original's broker lacked (no global username lookups, no staff writes to superusers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from smarter.models.manifest import Manifest, ManifestList
from smarter.models.sam.user import SAMUser
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from app.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.models import AccountContact, User, UserProfile
from app.runtime import Runtime
from app.schemas.manifests.user import UserManifest
from app.services import keys, principals
from app.services.manifests import protocol, registry
from app.services.manifests.base import ApplyResult, BrokerContext
from app.services.manifests.user import UserBroker
from tests.support import World, unit_of_work

# Verbatim copy of the original's apps/account/manifest/brokers/tests/data/user.yaml.
USER_YAML = (Path(__file__).parent / "data" / "user.yaml").read_bytes()
BROKER = UserBroker()
CLI = "/api/v1/cli"


async def verbatim(**config: Any) -> dict[str, Any]:
    """The YAML as the protocol reads it (unquoted dates become ISO text), with `spec.config` changes."""
    document = await protocol.parse_document(USER_YAML, "application/x-yaml")
    document["spec"]["config"].update(config)
    return document


def named(document: dict[str, Any], username: str) -> dict[str, Any]:
    document["metadata"]["username"] = username
    document["metadata"]["name"] = username
    return document


@asynccontextmanager
async def context(
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


async def apply(
    runtime: Runtime, world: World, actor: str, document: dict[str, Any], account_number: str | None = None
) -> ApplyResult:
    async with context(runtime, world, actor, account_number) as ctx:
        return await BROKER.apply(ctx, UserManifest.model_validate(document))


async def describe(runtime: Runtime, world: World, actor: str, username: str) -> dict[str, Any]:
    async with context(runtime, world, actor) as ctx:
        return await BROKER.describe(ctx, username)


async def user_named(runtime: Runtime, username: str) -> User | None:
    async with runtime.sessionmaker() as session:
        return (await session.execute(select(User).where(User.username == username))).scalar_one_or_none()


async def profiles_of(runtime: Runtime, username: str) -> list[UserProfile]:
    async with runtime.sessionmaker() as session:
        statement = (
            select(UserProfile)
            .join(User, User.id == UserProfile.user_id)
            .where(User.username == username)
            .options(selectinload(UserProfile.tag_links))
            .order_by(UserProfile.id)
        )
        return list((await session.execute(statement)).scalars())


# --- apply ---------------------------------------------------------------------------------------------------


async def test_registered_under_every_spelling() -> None:
    for segment in ("User", "users", "USER", "user"):
        assert registry.resolve(segment).kind == "User"


async def test_verbatim_manifest_applied_twice_is_idempotent(world: World, runtime: Runtime) -> None:
    first = await apply(runtime, world, "staff_a", await verbatim())
    assert first.created is True
    assert first.name == "example_user"
    user = await user_named(runtime, "example_user")
    assert user is not None
    assert (user.email, user.first_name, user.last_name) == ("joe@mail.com", "John", "Doe")
    assert (user.is_active, user.is_staff, user.is_superuser) == (True, False, False)
    (profile,) = await profiles_of(runtime, "example_user")
    assert profile.account_id == world.account_a.id
    assert (profile.name, profile.version, profile.description) == (
        "example_user",
        "1.0.0",
        "an example user manifest for the Smarter API User",
    )
    assert profile.tags == ["account", "user"]
    assert profile.annotations[1] == {"smarter.sh/created-at": "2024-01-01T00:00:00+00:00"}
    assert profile.annotations[3] == {"smarter.sh/updated-at": "2024-01-01"}
    async with runtime.sessionmaker() as session:
        contact = (
            await session.execute(select(AccountContact).where(AccountContact.email == "joe@mail.com"))
        ).scalar_one()
    assert contact.account_id == world.account_a.id

    second = await apply(runtime, world, "staff_a", await verbatim())
    assert second.created is False
    assert second.data == first.data  # nothing changed, not even `modified`
    again = await user_named(runtime, "example_user")
    assert again is not None
    assert again.updated_at == user.updated_at
    (profile_again,) = await profiles_of(runtime, "example_user")
    assert profile_again.updated_at == profile.updated_at
    async with runtime.sessionmaker() as session:
        assert (await session.execute(select(func.count()).select_from(User))).scalar_one() == len(world.actors) + 1


async def test_apply_updates_a_user_of_the_acting_account(world: World, runtime: Runtime) -> None:
    await apply(runtime, world, "staff_a", await verbatim())
    changed = await verbatim(email="john@example.com", isStaff=True, firstName=None)
    changed["metadata"]["tags"] = ["moved"]
    result = await apply(runtime, world, "staff_a", changed)
    assert result.created is False
    config = result.data["spec"]["config"]
    assert (config["email"], config["isStaff"], config["firstName"]) == ("john@example.com", True, "")
    assert result.data["metadata"]["tags"] == ["moved"]


async def test_describe_is_an_sdk_user_manifest(world: World, runtime: Runtime) -> None:
    applied = await apply(runtime, world, "staff_a", await verbatim())
    described = await describe(runtime, world, "staff_a", "example_user")
    assert described == applied.data
    sam = SAMUser.model_validate(described)
    assert sam.status is not None
    assert sam.status.username == "example_user"
    assert sam.status.account_number == world.account_a.account_number
    assert described["status"]["account_number"] == world.account_a.account_number  # snake_case, as the SDK
    user = await user_named(runtime, "example_user")
    assert user is not None
    assert sam.status.recordLocator == user.record_locator
    assert described["status"]["dependencies"] == []
    assert sam.metadata.username == "example_user"
    assert sam.spec.config.email == "joe@mail.com"
    assert Manifest.model_validate(described).kind == "User"
    # A describe result applies as is (its status is ignored) and changes nothing.
    assert (await apply(runtime, world, "staff_a", described)).data == described


async def test_regular_users_cannot_apply(world: World, runtime: Runtime) -> None:
    for actor in ("regular_a", "multi"):
        with pytest.raises(Forbidden):
            await apply(runtime, world, actor, await verbatim())
    assert await user_named(runtime, "example_user") is None


async def test_staff_never_touch_other_tenants_users(world: World, runtime: Runtime) -> None:
    # The original looked usernames up globally and changed any tenant's user (study §8 item 6).
    with pytest.raises(Conflict):
        await apply(runtime, world, "staff_a", named(await verbatim(isActive=False), "regular_b"))
    with pytest.raises(Conflict):
        await apply(runtime, world, "staff_a", named(await verbatim(email="mine@example.com"), "admin"))
    for username in ("regular_b", "admin"):
        user = await user_named(runtime, username)
        assert user is not None
        assert user.is_active is True
        assert user.email != "mine@example.com"
        assert len(await profiles_of(runtime, username)) == 1


async def test_staff_never_touch_superusers(world: World, runtime: Runtime, client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/accounts/user-profiles/",
        json={"username": "admin", "accountNumber": world.account_a.account_number},
        headers=world["superuser"].headers,
    )
    assert response.status_code == 201
    with pytest.raises(Forbidden):
        await apply(runtime, world, "staff_a", named(await verbatim(email="mine@example.com"), "admin"))
    with pytest.raises(Forbidden):
        async with context(runtime, world, "staff_a") as ctx:
            await BROKER.delete(ctx, "admin")
    admin = await user_named(runtime, "admin")
    assert admin is not None
    assert admin.email == "admin@smarter.sh"


async def test_a_superuser_adds_an_existing_user_to_the_acting_account(world: World, runtime: Runtime) -> None:
    await apply(runtime, world, "staff_b", named(await verbatim(), "shared"))
    result = await apply(runtime, world, "superuser", named(await verbatim(firstName="Shared"), "shared"))
    assert result.created is False
    assert result.data["status"]["account_number"] == world.platform.account_number
    assert {p.account_id for p in await profiles_of(runtime, "shared")} == {world.account_b.id, world.platform.id}
    user = await user_named(runtime, "shared")
    assert user is not None
    assert user.first_name == "Shared"


async def test_apply_in_a_named_account(world: World, runtime: Runtime, client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/accounts/user-profiles/",
        json={"username": "staff_b", "accountNumber": world.account_a.account_number},
        headers=world["superuser"].headers,
    )
    assert response.status_code == 201
    # staff_b's key acts only in its owner profile's account (B), whatever they belong to.
    with pytest.raises(Unprocessable):
        await apply(runtime, world, "staff_b", await verbatim(), world.account_a.account_number)
    result = await apply(runtime, world, "superuser", await verbatim(), world.account_a.account_number)
    assert result.data["status"]["account_number"] == world.account_a.account_number
    assert [p.account_id for p in await profiles_of(runtime, "example_user")] == [world.account_a.id]


async def test_losing_is_staff_by_manifest_refuses_the_key_at_once(
    world: World, runtime: Runtime, client: httpx.AsyncClient
) -> None:
    staff = world["staff_b"]
    assert (await client.post(f"{CLI}/whoami/", headers=staff.headers)).status_code == 200
    document = named(await verbatim(isStaff=False, email="staff_b@example.com"), "staff_b")
    await apply(runtime, world, "superuser", document)
    assert (await client.post(f"{CLI}/whoami/", headers=staff.headers)).status_code == 401
    staff_b = await user_named(runtime, "staff_b")
    assert staff_b is not None
    assert staff_b.is_staff is False


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "config", "email"), None),
        (("spec", "config", "email"), "not-an-email"),
        (("spec", "config", "isActive"), None),
        (("spec", "config", "isSuperuser"), True),
        (("metadata", "username"), "bad name"),
        (("metadata", "name"), "\n"),
        (("kind",), "Users"),
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
    with pytest.raises(ValidationError):
        UserManifest.model_validate(document)


# --- get, describe, delete --------------------------------------------------------------------------------------


async def test_get_lists_the_users_the_caller_can_read(world: World, runtime: Runtime) -> None:
    await apply(runtime, world, "staff_a", await verbatim())
    async with context(runtime, world, "staff_a") as ctx:
        rows = await BROKER.get(ctx, None)
        only = await BROKER.get(ctx, "example_user")
        none = await BROKER.get(ctx, "regular_b")
    assert {r["username"] for r in rows} == {"example_user", "staff_a", "regular_a", "multi"}
    assert rows[0]["username"] == "example_user"  # newest first
    assert [(r["username"], r["name"]) for r in only] == [("example_user", "example_user")]
    assert {c.name for c in BROKER.columns} == set(only[0])
    assert none == []
    async with context(runtime, world, "regular_a") as ctx:
        assert [r["username"] for r in await BROKER.get(ctx, None)] == ["regular_a"]


async def test_describe_outside_scope_is_404(world: World, runtime: Runtime) -> None:
    for actor, username in (("staff_a", "regular_b"), ("regular_a", "staff_a"), ("staff_b", "nobody")):
        with pytest.raises(NotFound):
            await describe(runtime, world, actor, username)
    # A user describes themselves (metadata of their profile in the acting account).
    described = await describe(runtime, world, "regular_a", "regular_a")
    assert described["metadata"]["name"] == "regular_a"
    assert described["status"]["account_number"] == world.account_a.account_number


async def test_delete_removes_the_user(world: World, runtime: Runtime) -> None:
    await apply(runtime, world, "staff_a", await verbatim())
    async with context(runtime, world, "staff_a") as ctx:
        await BROKER.delete(ctx, "example_user")
    assert await user_named(runtime, "example_user") is None
    with pytest.raises(NotFound):
        await describe(runtime, world, "staff_a", "example_user")


async def test_delete_of_a_shared_user_removes_only_the_acting_profile(world: World, runtime: Runtime) -> None:
    async with context(runtime, world, "staff_a") as ctx:
        await BROKER.delete(ctx, "multi")
    assert [p.account_id for p in await profiles_of(runtime, "multi")] == [world.account_b.id]
    # Now multi is B's alone: staff_a cannot see them any more.
    with pytest.raises(NotFound):
        async with context(runtime, world, "staff_a") as ctx:
            await BROKER.delete(ctx, "multi")
    async with context(runtime, world, "staff_b") as ctx:
        await BROKER.delete(ctx, "multi")
    assert await user_named(runtime, "multi") is None


async def test_delete_refusals(world: World, runtime: Runtime) -> None:
    cases: list[tuple[str, str, type[Exception]]] = [
        ("regular_a", "regular_a", Forbidden),
        ("regular_a", "staff_a", NotFound),
        ("staff_a", "staff_a", Conflict),
        ("staff_a", "regular_b", NotFound),
        ("superuser", "admin", Conflict),
    ]
    for actor, username, error in cases:
        with pytest.raises(error):
            async with context(runtime, world, actor) as ctx:
                await BROKER.delete(ctx, username)
    for username in ("regular_a", "staff_a", "regular_b", "admin"):
        assert await user_named(runtime, username) is not None


async def test_example_manifest_validates_and_applies(world: World, runtime: Runtime) -> None:
    example = BROKER.example_manifest()
    SAMUser.model_validate(example)
    result = await apply(runtime, world, "staff_a", example)
    assert result.created is True
    SAMUser.model_validate(result.data)


# --- over HTTP ------------------------------------------------------------------------------------------------


async def test_verbatim_yaml_over_http(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    headers = {**world["staff_a"].headers, "Content-Type": "application/x-yaml"}
    first = await client.post(f"{CLI}/apply/", content=USER_YAML, headers=headers)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["message"] == "User example_user applied successfully"
    assert body["metadata"] == {"command": "apply", "thing": "User"}
    again = await client.post(f"{CLI}/apply/", content=USER_YAML, headers=headers)
    assert again.status_code == 200
    assert again.json()["data"] == body["data"]

    described = await client.post(f"{CLI}/describe/users/", params={"name": "example_user"}, headers=headers)
    assert described.status_code == 200
    assert SAMUser.model_validate(described.json()["data"]).status is not None
    listed = await client.get(f"{CLI}/get/user/", params={"name": "example_user"}, headers=headers)
    assert listed.status_code == 200
    table = ManifestList.model_validate(listed.json()["data"])
    assert table.metadata.count == 1
    assert table.data.items[0]["username"] == "example_user"

    regular = await client.post(
        f"{CLI}/apply/", content=USER_YAML, headers={**world["regular_a"].headers, "Content-Type": "application/x-yaml"}
    )
    assert regular.status_code == 403
    assert regular.json()["error"]["status"] == 403
    elsewhere = await client.post(
        f"{CLI}/apply/", content=USER_YAML, headers={**world["staff_b"].headers, "Content-Type": "application/x-yaml"}
    )
    assert elsewhere.status_code == 409

    deleted = await client.post(f"{CLI}/delete/User/", params={"name": "example_user"}, headers=headers)
    assert deleted.status_code == 200, deleted.text
    assert await user_named(runtime, "example_user") is None
    gone = await client.post(f"{CLI}/describe/User/", params={"name": "example_user"}, headers=headers)
    assert gone.status_code == 404


async def test_example_manifest_over_http_passes_validate(client: httpx.AsyncClient, world: World) -> None:
    headers = world["staff_a"].headers
    example = await client.post(f"{CLI}/example-manifest/user/", headers=headers)
    assert example.status_code == 200
    validated = await client.post(f"{CLI}/validate/", json=example.json()["data"], headers=headers)
    assert validated.json()["data"] == {"valid": True, "errors": []}
