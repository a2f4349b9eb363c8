"""Who a credential resolves to: flags, key kind, memberships (ordered by profile id), acting account."""

from __future__ import annotations

import httpx
import pytest

from app.errors import Unprocessable
from app.identifiers import PLATFORM_ACCOUNT_NUMBER
from app.models import KIND_API_KEY, KIND_LOGIN
from app.runtime import Runtime
from app.services import principals, profiles
from app.services.permissions import Acting, NoActingAccount, acting_account, is_account_admin
from app.services.principals import Membership, Principal
from tests.auth.helpers import make_login_token, make_user, principal_for
from tests.support import World, unit_of_work


async def acting(runtime: Runtime, principal: Principal, account_number: str | None = None) -> Acting:
    async with unit_of_work(runtime) as session:
        return await acting_account(session, principal, account_number)


async def test_superuser(runtime: Runtime, world: World) -> None:
    actor = world["superuser"]
    principal = await principal_for(runtime, actor.key)
    assert (principal.user_id, principal.username) == (actor.user.id, "admin")
    assert (principal.is_active, principal.is_staff, principal.is_superuser) == (True, True, True)
    assert (principal.key_id, principal.key_kind, principal.key_active) == (actor.key_row.id, KIND_API_KEY, True)
    assert principal.expires_at is None
    assert principal.memberships == (Membership(actor.profile.id, world.platform.id, PLATFORM_ACCOUNT_NUMBER),)
    assert principal.platform_account_id == world.platform.id
    assert (await acting(runtime, principal)).account_number == PLATFORM_ACCOUNT_NUMBER
    # A superuser administers every account, members or not.
    assert all(is_account_admin(principal, a.id) for a in (world.platform, world.account_a, world.account_b))


async def test_staff(runtime: Runtime, world: World) -> None:
    actor = world["staff_a"]
    principal = await principal_for(runtime, actor.key)
    assert (principal.username, principal.is_staff, principal.is_superuser) == ("staff_a", True, False)
    assert (principal.key_id, principal.key_kind) == (actor.key_row.id, KIND_API_KEY)
    assert principal.memberships == (Membership(actor.profile.id, world.account_a.id, world.account_a.account_number),)
    assert principal.platform_account_id == world.platform.id
    assert is_account_admin(principal, world.account_a.id)
    assert not is_account_admin(principal, world.account_b.id)
    assert not is_account_admin(principal, world.platform.id)


async def test_regular_user_with_a_login_token(runtime: Runtime, world: World) -> None:
    actor = world["regular_b"]
    principal = await principal_for(runtime, actor.key)
    assert (principal.username, principal.is_staff, principal.is_superuser) == ("regular_b", False, False)
    assert (principal.key_id, principal.key_kind) == (actor.key_row.id, KIND_LOGIN)
    assert principal.expires_at == actor.key_row.expires_at
    assert principal.expires_at is not None
    assert principal.expires_at.utcoffset() is not None
    assert principal.memberships == (Membership(actor.profile.id, world.account_b.id, world.account_b.account_number),)
    assert not is_account_admin(principal, world.account_b.id)


async def test_multi_account_user(runtime: Runtime, world: World) -> None:
    actor = world["multi"]
    principal = await principal_for(runtime, actor.key)
    a, b = world.account_a, world.account_b
    assert [m.account_id for m in principal.memberships] == [a.id, b.id]
    assert list(principal.profile_ids) == sorted(principal.profile_ids)
    assert principal.memberships[0].profile_id == actor.profile.id
    assert principal.account_ids == (a.id, b.id)

    assert (await acting(runtime, principal)).membership == principal.memberships[0]
    assert (await acting(runtime, principal, a.account_number)).account_id == a.id
    assert (await acting(runtime, principal, b.account_number)).account_id == b.id
    for foreign in (PLATFORM_ACCOUNT_NUMBER, "0000-0000-0000", "not a number"):
        with pytest.raises(Unprocessable) as raised:
            await acting(runtime, principal, foreign)
        assert raised.value.status == 422
        assert raised.value.errors is not None
        assert raised.value.errors[0].loc == ["query", "accountNumber"]


async def test_memberships_follow_profile_ids_not_account_ids(runtime: Runtime, world: World) -> None:
    """Joining B before A makes B the default acting account, though A's account id is lower."""
    user, profile_b = await make_user(runtime, "b_first", world.account_b)
    async with unit_of_work(runtime) as session:
        profile_a = await profiles.add_profile(session, user, world.account_a)
    assert profile_b is not None
    assert profile_b.id < profile_a.id
    assert world.account_a.id < world.account_b.id
    _, key = await make_login_token(runtime, user)
    principal = await principal_for(runtime, key)
    assert [m.account_id for m in principal.memberships] == [world.account_b.id, world.account_a.id]
    assert (await acting(runtime, principal)).account_id == world.account_b.id


async def test_user_without_a_profile_acts_nowhere(runtime: Runtime, world: World) -> None:
    user, _ = await make_user(runtime, "loner", None)
    _, key = await make_login_token(runtime, user)
    principal = await principal_for(runtime, key)
    assert principal.memberships == ()
    with pytest.raises(NoActingAccount):
        await acting(runtime, principal)


async def test_unknown_digest_loads_nothing(runtime: Runtime, world: World) -> None:
    assert await principals.load_principal(runtime.reader, "0" * 128) is None


async def test_whoami_reports_the_acting_account(client: httpx.AsyncClient, world: World) -> None:
    actor = world["multi"]
    url = "/api/v1/cli/whoami/"
    default = await client.get(url, headers=actor.headers)
    assert default.status_code == 200, default.text
    assert default.json()["data"]["account"]["accountNumber"] == world.account_a.account_number
    chosen = await client.get(url, params={"accountNumber": world.account_b.account_number}, headers=actor.headers)
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["data"]["account"]["accountNumber"] == world.account_b.account_number
    foreign = await client.get(url, params={"accountNumber": PLATFORM_ACCOUNT_NUMBER}, headers=actor.headers)
    assert foreign.status_code == 422, foreign.text
    admin = await client.get(url, headers=world["superuser"].headers)
    assert admin.json()["data"]["account"]["accountNumber"] == PLATFORM_ACCOUNT_NUMBER
