"""Login tokens: `auth/login/` (HTTP Basic), `logout/`, `logoutall/`."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select, update

from app.models import KIND_LOGIN, ApiKey, User
from app.models.base import utcnow
from app.runtime import Runtime
from app.services import keys
from tests.auth.helpers import BASIC_CHALLENGE, PROBE, assert_problem_401, hash_once, make_key, make_user
from tests.support import World, unit_of_work

LOGIN = "/api/v1/auth/login/"
LOGOUT = "/api/v1/auth/logout/"
LOGOUT_ALL = "/api/v1/auth/logoutall/"
PASSWORD = "correct horse battery staple"
BAD_CREDENTIALS = "Invalid username or password."


async def login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(LOGIN, auth=(username, password))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


async def login_tokens_of(runtime: Runtime, user_id: int) -> int:
    async with runtime.sessionmaker() as session:
        statement = select(func.count()).where(ApiKey.user_id == user_id, ApiKey.kind == KIND_LOGIN)
        return (await session.execute(statement)).scalar_one()


async def test_login_returns_a_working_token(client: httpx.AsyncClient, runtime: Runtime, world: World) -> None:
    user, _ = await make_user(runtime, "alice", world.account_a, password=PASSWORD)
    before = utcnow()
    response = await login(client, "alice", PASSWORD)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"token", "expiresAt", "user"}
    assert keys.is_well_formed(body["token"])
    assert body["user"]["username"] == "alice"
    assert body["user"]["id"] == user.id
    assert "password" not in body["user"]
    ttl = timedelta(seconds=runtime.settings.login_token_ttl)
    expires = datetime.fromisoformat(body["expiresAt"])
    assert expires.utcoffset() is not None
    assert before + ttl - timedelta(seconds=5) <= expires <= utcnow() + ttl + timedelta(seconds=5)
    assert (await client.get(PROBE, headers=bearer(body["token"]))).status_code == 200
    async with runtime.sessionmaker() as session:
        row = (await session.execute(select(ApiKey).where(ApiKey.digest == keys.digest_of(body["token"])))).one()[0]
        stored = (await session.execute(select(User).where(User.id == user.id))).scalar_one()
    assert (row.kind, row.user_id, row.is_active) == (KIND_LOGIN, user.id, True)
    assert row.token_key == body["token"][:15]
    assert stored.last_login is not None


async def test_login_token_expires_after_the_configured_ttl(
    client: httpx.AsyncClient, runtime: Runtime, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_user(runtime, "brief", world.account_a, password=PASSWORD)
    monkeypatch.setattr(runtime.settings, "login_token_ttl", 1)
    response = await login(client, "brief", PASSWORD)
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    assert (await client.get(PROBE, headers=bearer(token))).status_code == 200
    await asyncio.sleep(1.1)
    assert_problem_401(await client.get(PROBE, headers=bearer(token)), "Invalid token.")


async def test_bad_credentials_are_indistinguishable(client: httpx.AsyncClient, runtime: Runtime, world: World) -> None:
    await make_user(runtime, "bob", world.account_a, password=PASSWORD)
    await make_user(runtime, "sleeper", world.account_a, password=PASSWORD, is_active=False)
    await make_user(runtime, "keyonly", world.account_a)  # no password: API keys only
    responses = [
        await login(client, "nobody", PASSWORD),
        await login(client, "bob", "wrong password"),
        await login(client, "bob", ""),
        await login(client, "BOB", PASSWORD),
        await login(client, "sleeper", PASSWORD),
        await login(client, "keyonly", ""),
        await login(client, "keyonly", "anything"),
    ]
    for response in responses:
        assert_problem_401(response, BAD_CREDENTIALS, challenge=BASIC_CHALLENGE)
    # Alike but for each request's own id.
    assert len({json.dumps({**r.json(), "requestId": None}) for r in responses}) == 1
    assert len({tuple(sorted(h for h in r.headers.items() if h[0] != "x-request-id")) for r in responses}) == 1


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Basic",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Token " + "0" * 64,
    ],
)
async def test_missing_or_malformed_basic_credentials(
    client: httpx.AsyncClient, world: World, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = await client.post(LOGIN, headers=headers)
    assert_problem_401(response, challenge=BASIC_CHALLENGE)


async def test_non_ascii_passwords_log_in(client: httpx.AsyncClient, runtime: Runtime, world: World) -> None:
    """RFC 7617: user agents send UTF-8; a password set with accents must be usable."""
    await make_user(runtime, "zoe", world.account_a, password="pässwörd-ñ-日本")
    response = await login(client, "zoe", "pässwörd-ñ-日本")
    assert response.status_code == 200, response.text
    assert_problem_401(await login(client, "zoe", "passwort"), BAD_CREDENTIALS, challenge=BASIC_CHALLENGE)


async def test_logout_deletes_the_login_token(client: httpx.AsyncClient, runtime: Runtime, world: World) -> None:
    user, _ = await make_user(runtime, "carol", world.account_a, password=PASSWORD)
    first = (await login(client, "carol", PASSWORD)).json()["token"]
    second = (await login(client, "carol", PASSWORD)).json()["token"]
    assert (await client.get(PROBE, headers=bearer(first))).status_code == 200  # warm
    response = await client.post(LOGOUT, headers=bearer(first))
    assert response.status_code == 204
    assert response.content == b""
    assert_problem_401(await client.get(PROBE, headers=bearer(first)), "Invalid token.")
    assert await login_tokens_of(runtime, user.id) == 1
    assert (await client.get(PROBE, headers=bearer(second))).status_code == 200


async def test_logout_with_a_named_key_deactivates_it(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    actor = world["staff_b"]
    assert (await client.get(PROBE, headers=actor.headers)).status_code == 200
    assert (await client.post(LOGOUT, headers=actor.headers)).status_code == 204
    assert_problem_401(await client.get(PROBE, headers=actor.headers), "Api key is not activated.")
    async with runtime.sessionmaker() as session:
        row = await session.get(ApiKey, actor.key_row.id)
    assert row is not None
    assert row.is_active is False


async def test_logoutall_revokes_login_tokens_and_keeps_named_keys(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    actor = world["staff_a"]
    hashed = await hash_once(PASSWORD)
    async with unit_of_work(runtime) as session:
        await session.execute(update(User).where(User.id == actor.user.id).values(password=hashed))
    _, other_key = await make_key(runtime, actor.user, actor.profile, "other_key")
    tokens = [(await login(client, "staff_a", PASSWORD)).json()["token"] for _ in range(2)]
    for token in (*tokens, actor.key, other_key):
        assert (await client.get(PROBE, headers=bearer(token))).status_code == 200
    someone_else = world["regular_a"]

    response = await client.post(LOGOUT_ALL, headers=bearer(tokens[0]))
    assert response.status_code == 204
    for token in tokens:
        assert_problem_401(await client.get(PROBE, headers=bearer(token)), "Invalid token.")
    assert await login_tokens_of(runtime, actor.user.id) == 0
    for token in (actor.key, other_key, someone_else.key):
        assert (await client.get(PROBE, headers=bearer(token))).status_code == 200
    # Called with a named key, it revokes the login tokens just the same.
    third = (await login(client, "staff_a", PASSWORD)).json()["token"]
    assert (await client.post(LOGOUT_ALL, headers=actor.headers)).status_code == 204
    assert (await client.get(PROBE, headers=bearer(third))).status_code == 401
    assert (await client.get(PROBE, headers=actor.headers)).status_code == 200


async def test_logout_requires_a_credential(client: httpx.AsyncClient, world: World) -> None:
    for path in (LOGOUT, LOGOUT_ALL):
        assert_problem_401(await client.post(path), "Authentication credentials were not provided.")


async def test_usernames_that_cannot_exist_are_a_plain_401(client: httpx.AsyncClient, world: World) -> None:
    for username in ("nul\x00byte", "x" * 10_000, "white space", "ünïcode"):
        credentials = base64.b64encode(f"{username}:{PASSWORD}".encode()).decode()
        response = await client.post(LOGIN, headers={"Authorization": f"Basic {credentials}"})
        assert_problem_401(response, BAD_CREDENTIALS, challenge=BASIC_CHALLENGE)


async def test_an_imported_non_ascii_username_logs_in(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """Django allows Unicode usernames; rows imported from Smarter keep them (new ones are ASCII)."""
    user, _ = await make_user(runtime, "imported", world.account_a, password=PASSWORD)
    async with unit_of_work(runtime) as session:
        await session.execute(update(User).where(User.id == user.id).values(username="josé"))
    response = await login(client, "josé", PASSWORD)
    assert response.status_code == 200, response.text
    assert response.json()["user"]["username"] == "josé"
