"""Every way a request can fail to authenticate: 401, `WWW-Authenticate: Token`, problem+json.

Malformed headers and keys are refused by parsing alone: no SQL statement, no cache lookup.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import update

from app.models import ApiKey, User
from app.models.base import utcnow
from app.runtime import Runtime
from app.services import keys
from tests.auth.helpers import (
    LIGHT_PROBE,
    PROBE,
    assert_problem_401,
    capture_statements,
    drain_listener,
    make_key,
    make_login_token,
    make_user,
    principal_cache,
)
from tests.support import World, unit_of_work

KEY = keys.generate_key()

MALFORMED: dict[str, tuple[str, str]] = {
    "wrong keyword": (f"Basic {KEY}", "Invalid token header. Use 'Token <key>'."),
    "keyword glued to the key": (f"Token{KEY}", "Invalid token header. Use 'Token <key>'."),
    "one part": ("Token", "Invalid token header. No credentials provided."),
    "keyword and a space": ("Token ", "Invalid token header. No credentials provided."),
    "three parts": (f"Token {KEY} extra", "Invalid token header. Token string should not contain spaces."),
    "blank": ("   ", "Authentication credentials were not provided."),
    "63 characters": (f"Token {KEY[:63]}", "Invalid token."),
    "65 characters": (f"Token {KEY}0", "Invalid token."),
    "uppercase hex": (f"Token {KEY.upper()}", "Invalid token."),
    "one uppercase letter": (f"Token {'A' + 'a' * 63}", "Invalid token."),
    "non-hex": (f"Token {'g' * 64}", "Invalid token."),
    "a 15-character token key": (f"Token {KEY[:15]}", "Invalid token."),
    "a 128-character digest": (f"Token {keys.digest_of(KEY)}", "Invalid token."),
    "full-width digits": (f"Token {'１' * 64}", "Invalid token."),
}


async def test_missing_header_is_401(client: httpx.AsyncClient, world: World) -> None:
    assert_problem_401(await client.get(PROBE), "Authentication credentials were not provided.")
    assert_problem_401(await client.get(PROBE, headers={"Authorization": ""}))


async def test_malformed_header_is_401(client: httpx.AsyncClient, world: World) -> None:
    for case, (header, detail) in MALFORMED.items():
        response = await client.get(PROBE, headers={"Authorization": header.encode()})
        try:
            assert_problem_401(response, detail)
        except AssertionError as error:
            raise AssertionError(f"{case}: {response.status_code} {response.text}") from error


async def test_malformed_keys_never_reach_the_database_or_the_cache(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    cache = principal_cache(runtime)
    await drain_listener(runtime)
    await client.get(LIGHT_PROBE, headers=world["staff_a"].headers)  # one entry, so "unchanged" means something
    loads, size = cache.loads, len(cache)
    assert size == 1
    with capture_statements(runtime) as statements:
        for header, _ in MALFORMED.values():
            for path in (PROBE, LIGHT_PROBE):
                response = await client.get(path, headers={"Authorization": header.encode()})
                assert response.status_code == 401
                assert response.headers["www-authenticate"] == "Token"
        assert_problem_401(await client.get(PROBE))
    assert statements.sql == []
    assert (cache.loads, len(cache)) == (loads, size)


async def test_unknown_well_formed_key_is_401(client: httpx.AsyncClient, runtime: Runtime, world: World) -> None:
    cache = principal_cache(runtime)
    loads = cache.loads
    for _ in range(2):
        assert_problem_401(await client.get(PROBE, headers={"Authorization": f"Token {KEY}"}), "Invalid token.")
    # A miss is never cached (a key created a moment later must work), so each try looked it up.
    assert cache.peek(keys.digest_of(KEY)) is None
    assert cache.loads - loads == 2


async def test_expired_key_is_401(client: httpx.AsyncClient, runtime: Runtime, world: World) -> None:
    actor = world["staff_a"]
    row, key = await make_key(runtime, actor.user, actor.profile, "soon_expired", expires_at=utcnow() + timedelta(1))
    async with unit_of_work(runtime) as session:
        await session.execute(update(ApiKey).where(ApiKey.id == row.id).values(expires_at=utcnow() - timedelta(1)))
    assert_problem_401(await client.get(PROBE, headers={"Authorization": f"Token {key}"}), "Invalid token.")


async def test_deactivated_key_is_401(client: httpx.AsyncClient, runtime: Runtime, world: World) -> None:
    actor = world["staff_a"]
    _, key = await make_key(runtime, actor.user, actor.profile, "inactive", is_active=False)
    assert_problem_401(await client.get(PROBE, headers={"Authorization": f"Token {key}"}), "Api key is not activated.")


async def test_inactive_user_is_401(client: httpx.AsyncClient, runtime: Runtime, world: World) -> None:
    staff, profile = await make_user(runtime, "gone_staff", world.account_a, is_staff=True, is_active=False)
    _, named = await make_key(runtime, staff, profile, "gone_key")
    regular, _ = await make_user(runtime, "gone_regular", world.account_a, is_active=False)
    _, login = await make_login_token(runtime, regular)
    for key in (named, login):
        response = await client.get(PROBE, headers={"Authorization": f"Token {key}"})
        assert_problem_401(response, "User inactive or deleted.")


async def test_named_key_of_a_user_who_lost_staff_is_401(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    actor = world["staff_a"]
    assert (await client.get(PROBE, headers=actor.headers)).status_code == 200
    async with unit_of_work(runtime) as session:
        await session.execute(update(User).where(User.id == actor.user.id).values(is_staff=False).returning(User.id))
    response = await client.get(PROBE, headers=actor.headers)
    assert_problem_401(response, "API keys can only be used by staff users.")
    # The same user's login token still works: only named keys are staff-only.
    _, login = await make_login_token(runtime, actor.user)
    assert (await client.get(PROBE, headers={"Authorization": f"Token {login}"})).status_code == 200


async def test_keyword_is_case_insensitive(client: httpx.AsyncClient, world: World) -> None:
    for keyword in ("Token", "token", "TOKEN", "ToKeN", "Bearer", "bearer", "BEARER"):
        for name in ("staff_a", "regular_a"):
            response = await client.get(PROBE, headers={"Authorization": f"{keyword} {world[name].key}"})
            assert response.status_code == 200, (keyword, name, response.text)


async def test_whitespace_between_keyword_and_key_is_tolerated_like_knox(
    client: httpx.AsyncClient, world: World
) -> None:
    for separator in ("  ", "\t", " \t "):
        response = await client.get(PROBE, headers={"Authorization": f"Token{separator}{world['staff_a'].key}"})
        assert response.status_code == 200, (separator, response.text)


async def test_cli_routes_refuse_with_the_journal_envelope(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get(LIGHT_PROBE, headers={"Authorization": f"Token {KEY}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Token"
    error = response.json()["error"]
    assert (error["status"], error["description"]) == (401, "Invalid token.")
