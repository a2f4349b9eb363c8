"""Passwords: argon2 for new hashes; imported bcrypt and Django pbkdf2 hashes verify and are upgraded on login."""

from __future__ import annotations

import base64

import httpx
import pytest
from passlib.hash import bcrypt, django_pbkdf2_sha256
from sqlalchemy import select, update

from app.models import User
from app.runtime import Runtime
from app.services import passwords
from tests.auth.helpers import BASIC_CHALLENGE, PROBE, assert_problem_401, make_user
from tests.support import World, unit_of_work

LOGIN = "/api/v1/auth/login/"
PASSWORD = "imported-from-smarter"
LEGACY = {
    "bcrypt": lambda: bcrypt.using(rounds=4).hash(PASSWORD),
    "django_pbkdf2_sha256": lambda: django_pbkdf2_sha256.using(rounds=1_000).hash(PASSWORD),
}


async def stored_hash(runtime: Runtime, user_id: int) -> str:
    async with runtime.sessionmaker() as session:
        return (await session.execute(select(User.password).where(User.id == user_id))).scalar_one()


async def set_hash(runtime: Runtime, user_id: int, value: str) -> None:
    async with unit_of_work(runtime) as session:
        await session.execute(update(User).where(User.id == user_id).values(password=value))


async def test_new_hashes_are_argon2_and_verify() -> None:
    hashed = await passwords.hash_password("s3cret")
    assert hashed.startswith("$argon2id$")
    assert await passwords.verify_password("s3cret", hashed) == (True, None)
    assert await passwords.verify_password("S3cret", hashed) == (False, None)


@pytest.mark.parametrize("scheme", sorted(LEGACY))
async def test_legacy_hash_logs_in_and_is_upgraded(
    client: httpx.AsyncClient, runtime: Runtime, world: World, scheme: str
) -> None:
    user, _ = await make_user(runtime, f"legacy_{scheme}", world.account_a)
    legacy = LEGACY[scheme]()
    assert (scheme == "bcrypt") == legacy.startswith("$2")
    assert (scheme != "bcrypt") == legacy.startswith("pbkdf2_sha256$")
    await set_hash(runtime, user.id, legacy)

    # A wrong password neither logs in nor touches the stored hash.
    assert_problem_401(await client.post(LOGIN, auth=(user.username, "nope")), challenge=BASIC_CHALLENGE)
    assert await stored_hash(runtime, user.id) == legacy

    response = await client.post(LOGIN, auth=(user.username, PASSWORD))
    assert response.status_code == 200, response.text
    upgraded = await stored_hash(runtime, user.id)
    assert upgraded.startswith("$argon2id$")
    assert await passwords.verify_password(PASSWORD, upgraded) == (True, None)
    assert (await client.get(PROBE, headers={"Authorization": f"Token {response.json()['token']}"})).status_code == 200
    # The upgraded hash keeps working.
    assert (await client.post(LOGIN, auth=(user.username, PASSWORD))).status_code == 200
    assert await stored_hash(runtime, user.id) == upgraded


@pytest.mark.parametrize(
    "stored",
    ["", "!unusable-django-password", "$argon2id$garbage", "$2b$12$short", "pbkdf2_sha256$x", "md5$a$b"],
)
async def test_unusable_or_malformed_hashes_never_match(stored: str) -> None:
    assert await passwords.verify_password(PASSWORD, stored) == (False, None)


@pytest.mark.parametrize("password", ["x" * 5_000, "nul\x00byte"])
async def test_passwords_passlib_refuses_are_a_plain_401(
    client: httpx.AsyncClient, runtime: Runtime, world: World, password: str
) -> None:
    user, _ = await make_user(runtime, "victim", world.account_a)
    await set_hash(runtime, user.id, bcrypt.using(rounds=4).hash(PASSWORD))
    for username in ("victim", "nobody"):
        credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
        response = await client.post(LOGIN, headers={"Authorization": f"Basic {credentials}"})
        assert_problem_401(response, "Invalid username or password.", challenge=BASIC_CHALLENGE)


async def test_a_malformed_stored_hash_is_a_plain_401(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    user, _ = await make_user(runtime, "corrupt", world.account_a)
    await set_hash(runtime, user.id, "$argon2id$garbage")
    response = await client.post(LOGIN, auth=("corrupt", PASSWORD))
    assert_problem_401(response, "Invalid username or password.", challenge=BASIC_CHALLENGE)
