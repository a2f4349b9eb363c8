"""Helpers shared by the authentication tests: probe routes, 401 assertions, SQL statement capture."""

from __future__ import annotations

import asyncio
import re
import secrets
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import httpx

from app.caching import notify as cache_notify
from app.caching.registry import Invalidation, SingleFlightCache
from app.models import Account, ApiKey, User, UserProfile
from app.runtime import Runtime
from app.services import api_keys, keys, passwords, principals, profiles, users
from app.services.principals import Principal
from tests.support import observe_statements, unit_of_work

# A REST read behind authentication: its 401s are problem+json.
PROBE = "/api/v1/plugins/"
# An authenticated route with no session: the principal is its only database work.
LIGHT_PROBE = "/api/v1/cli/version/"

TOKEN_CHALLENGE = "Token"
BASIC_CHALLENGE = 'Basic realm="smarter"'


def assert_problem_401(
    response: httpx.Response, detail: str | None = None, *, challenge: str = TOKEN_CHALLENGE
) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == challenge
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == "urn:smarter-core:problem:unauthorized"
    assert body["title"] == "Unauthorized"
    assert body["status"] == 401
    assert isinstance(body["detail"], str)
    assert body["detail"]
    if detail is not None:
        assert body["detail"] == detail


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def principal_cache(runtime: Runtime) -> SingleFlightCache[str, Principal]:
    return principals.principal_cache(runtime.caches)


class Statements:
    """Every SQL statement the engine sends while active (lower-cased, whitespace collapsed)."""

    def __init__(self) -> None:
        self.sql: list[str] = []

    def _record(self, statement: str) -> None:
        self.sql.append(re.sub(r"\s+", " ", statement).strip().lower())

    def matching(self, pattern: str) -> list[str]:
        return [s for s in self.sql if re.search(pattern, s)]

    @property
    def api_key_updates(self) -> list[str]:
        return self.matching(r"^update api_key\b")


@contextmanager
def capture_statements(runtime: Runtime) -> Iterator[Statements]:
    captured = Statements()
    with observe_statements(runtime, captured._record):
        yield captured


BARRIER_CACHE = "tests-barrier"


async def _present() -> bool:
    return True


async def drain_listener(runtime: Runtime) -> None:
    """On PostgreSQL, wait until every invalidation other processes sent so far has arrived, so a late
    one cannot empty a cache a test has just warmed. NOTIFY delivers in commit order, so a marker sent
    now under a foreign origin (this process ignores its own messages) arrives after all of them.
    """
    if runtime.listener is None:
        return
    cache = runtime.caches.register(BARRIER_CACHE)
    marker = secrets.token_hex(8)
    await cache.get(marker, _present)
    async with runtime.sessionmaker() as session:
        await cache_notify.publish(session, [Invalidation(cache=BARRIER_CACHE, key=marker)], origin="test-barrier")
        await session.commit()
    deadline = time.monotonic() + 10
    while cache.peek(marker) is not None:
        assert time.monotonic() < deadline, "this process's cache listener did not catch up"
        await asyncio.sleep(0.005)


async def make_user(
    runtime: Runtime,
    username: str,
    account: Account | None,
    *,
    is_staff: bool = False,
    is_active: bool = True,
    password: str | None = None,
) -> tuple[User, UserProfile | None]:
    """A user (with a profile in `account`); the password's argon2 hash is computed once per password."""
    async with unit_of_work(runtime) as session:
        user = await users.create_user(
            session, username=username, email=f"{username}@example.com", is_staff=is_staff, is_active=is_active
        )
        if password is not None:
            user.password = await hash_once(password)
        profile = await profiles.add_profile(session, user, account) if account is not None else None
    return user, profile


_HASHES: dict[str, str] = {}


async def hash_once(password: str) -> str:
    """argon2 costs ~0.3 s by design: tests reuse one hash per password (each hash verifies alike)."""
    if password not in _HASHES:
        _HASHES[password] = await passwords.hash_password(password)
    return _HASHES[password]


async def make_key(
    runtime: Runtime,
    user: User,
    profile: UserProfile | None,
    name: str,
    *,
    expires_at: datetime | None = None,
    is_active: bool = True,
) -> tuple[ApiKey, str]:
    async with unit_of_work(runtime) as session:
        return await api_keys.issue_key(
            session, user=user, profile=profile, name=name, expires_at=expires_at, is_active=is_active
        )


async def make_login_token(runtime: Runtime, user: User, ttl_seconds: int = 3600) -> tuple[ApiKey, str]:
    async with unit_of_work(runtime) as session:
        return await api_keys.issue_login_token(session, user, ttl_seconds)


async def principal_for(runtime: Runtime, key: str) -> Principal:
    return await principals.authenticate(runtime.reader, runtime.caches, keys.digest_of(key))
