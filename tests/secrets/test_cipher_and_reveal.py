"""Using a secret (`reveal`): the plaintext, expiry, `lastAccessed` at most once a minute; the embedded
default's key file; rotation of every value to a new key (`smarter-core rotate-secrets`)."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from app.config import PROJECT_ROOT
from app.models import Secret
from app.models.base import utcnow
from app.runtime import Runtime
from app.services.principals import Membership
from app.services.secrets import (
    SecretCipher,
    SecretUnavailable,
    SecretUndecryptable,
    generate_key,
    ids_by_name,
    names_by_id,
    reveal,
)
from app.services.secrets.cipher import key_file_of
from app.services.secrets.writes import insert_secret
from tests import support
from tests.cli import SMARTER_CORE
from tests.support import World, unit_of_work

BASE = "/api/v1/secrets/"


async def test_reveal_stamps_last_accessed_at_most_once_a_minute(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    staff = world["staff_a"].headers
    created = (await client.post(BASE, headers=staff, json={"name": "db", "value": "pw-1"})).json()
    now = utcnow()
    async with unit_of_work(runtime) as session:
        assert await reveal(session, runtime.cipher, created["id"], now=now) == "pw-1"
    first = (await client.get(f"{BASE}{created['id']}/", headers=staff)).json()
    assert first["lastAccessed"] is not None
    assert first["updatedAt"] == created["updatedAt"]  # a use is not a change
    async with unit_of_work(runtime) as session:
        await reveal(session, runtime.cipher, created["id"], now=now + timedelta(seconds=30))
    assert (await client.get(f"{BASE}{created['id']}/", headers=staff)).json()["lastAccessed"] == first["lastAccessed"]
    async with unit_of_work(runtime) as session:
        await reveal(session, runtime.cipher, created["id"], now=now + timedelta(seconds=61))
    later = (await client.get(f"{BASE}{created['id']}/", headers=staff)).json()
    assert later["lastAccessed"] > first["lastAccessed"]


async def test_an_expired_or_missing_secret_cannot_be_used(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    expires = utcnow() + timedelta(hours=1)
    body = {"name": "short_lived", "value": "pw", "expiresAt": expires.isoformat()}
    created = (await client.post(BASE, headers=world["staff_a"].headers, json=body)).json()
    async with unit_of_work(runtime) as session:
        assert await reveal(session, runtime.cipher, created["id"], now=expires - timedelta(seconds=1)) == "pw"
        with pytest.raises(SecretUnavailable) as expired:
            await reveal(session, runtime.cipher, created["id"], now=expires)
        assert expired.value.status == 409
        assert "short_lived" in expired.value.detail
        assert "pw" not in expired.value.detail.replace("expired", "")
        with pytest.raises(SecretUnavailable):
            await reveal(session, runtime.cipher, created["id"] + 1000, now=utcnow())
        with pytest.raises(SecretUndecryptable):  # a key that never encrypted it
            await reveal(session, SecretCipher([generate_key()]), created["id"], now=utcnow())


@pytest.mark.skipif(support.backend() != "sqlite", reason="the key file is the embedded (SQLite) default's")
async def test_the_embedded_default_keeps_its_key_next_to_the_database(runtime: Runtime) -> None:
    path = key_file_of(runtime.settings.database_url)
    assert path is not None
    assert path.parent == (PROJECT_ROOT / runtime.settings.database_url.split("///", 1)[1]).parent
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert SecretCipher([path.read_text().strip()]).decrypt(runtime.cipher.encrypt("x")) == "x"
    # Another process of the same database reads the same key.
    assert SecretCipher.for_settings(runtime.settings).decrypt(runtime.cipher.encrypt("y")) == "y"


VALUES = ["pa55word", "ünïcødé ✓", "x" * 65536, "line one\nline two", "********x"]


def rotate(database_url: str, keys: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SMARTER_CORE_") and k != "DATABASE_URL"}
    environment.update(DATABASE_URL=database_url, SMARTER_CORE_SECRETS_KEYS=keys)
    return subprocess.run(
        [str(SMARTER_CORE), "rotate-secrets"],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_rotate_secrets_reencrypts_every_value_with_the_newest_key(world: World, runtime: Runtime) -> None:
    old, new = generate_key(), generate_key()
    owner = Membership(world["staff_a"].profile.id, world.account_a.id, world.account_a.account_number)
    async with unit_of_work(runtime) as session:
        for n, value in enumerate(VALUES):
            await insert_secret(session, SecretCipher([old]), owner, name=f"secret_{n}", value=value)
    url = runtime.settings.database_url

    refused = await asyncio.to_thread(rotate, url, generate_key())  # no key opens them: nothing changes
    assert refused.returncode == 1, refused.stderr
    assert refused.stderr.startswith("Error: ")
    assert len(refused.stderr.splitlines()) == 1

    done = await asyncio.to_thread(rotate, url, f"{new},{old}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"Re-encrypted {len(VALUES)} secrets with the newest key."

    newest_only, old_only = SecretCipher([new]), SecretCipher([old])
    async with unit_of_work(runtime) as session:
        rows = (await session.execute(select(Secret.id, Secret.name).order_by(Secret.id))).all()
        assert len(rows) == len(VALUES)
        for (secret_id, name), value in zip(rows, VALUES, strict=True):
            assert await reveal(session, newest_only, secret_id, now=utcnow()) == value, name
            with pytest.raises(SecretUndecryptable):
                await reveal(session, old_only, secret_id, now=utcnow())


async def test_references_by_name(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    """What connections use to turn a secret's name into its id (same account only) and back."""
    for actor in ("staff_a", "staff_b"):
        response = await client.post(BASE, headers=world[actor].headers, json={"name": "db_password", "value": "v"})
        assert response.status_code == 201
    async with runtime.sessionmaker() as session:
        found = await ids_by_name(session, world.account_a.id, ["db_password", "missing"])
        assert list(found) == ["db_password"]
        assert await names_by_id(session, [found["db_password"], None]) == {found["db_password"]: "db_password"}
        assert await ids_by_name(session, world.account_a.id, []) == {}
