"""No key, digest, password or secret value ever reaches a log record, even with SQL echo on at DEBUG."""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy import select, update

from app.models import Secret, User
from app.models.base import utcnow
from app.runtime import Runtime
from app.services import api_keys, keys, secrets
from tests.auth.helpers import LIGHT_PROBE, PROBE, hash_once, make_user
from tests.support import World, unit_of_work

PASSWORD = "log-me-not-p4ssw0rd"


def leaks(caplog: pytest.LogCaptureFixture, secrets: list[str]) -> list[str]:
    found = []
    for record in caplog.records:
        texts = [record.getMessage(), repr(record.args), record.exc_text or ""]
        for secret in secrets:
            if any(secret in text for text in texts):
                found.append(f"{record.name}: {record.getMessage()[:200]}")
    found.extend(secret[:8] + "..." for secret in secrets if secret in caplog.text)
    return found


async def test_keys_digests_and_passwords_never_reach_the_logs(
    client: httpx.AsyncClient, runtime: Runtime, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    user, profile = await make_user(runtime, "logged", world.account_a, is_staff=True)
    hashed = await hash_once(PASSWORD)
    caplog.set_level(logging.DEBUG)  # every logger
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")  # SQL echo, with parameters if shown
    secrets: list[str] = [PASSWORD, hashed]

    async with unit_of_work(runtime) as session:
        await session.execute(update(User).where(User.id == user.id).values(password=hashed))
        _, named = await api_keys.issue_key(session, user=user, profile=profile, name="logged_key")
    secrets += [named, keys.digest_of(named)]

    # Success, from a cold and then a warm cache.
    for path in (PROBE, LIGHT_PROBE, PROBE):
        assert (await client.get(path, headers={"Authorization": f"Token {named}"})).status_code == 200

    # Failures: unknown, malformed (a near-miss of the real key), wrong password, unknown user.
    unknown = keys.generate_key()
    secrets += [unknown, keys.digest_of(unknown)]
    for header in (f"Token {unknown}", f"Token {named.upper()}", f"Token {named}x", f"Bearer {named} {named}"):
        assert (await client.get(PROBE, headers={"Authorization": header})).status_code == 401
    assert (await client.post("/api/v1/auth/login/", auth=("logged", PASSWORD + "!"))).status_code == 401
    assert (await client.post("/api/v1/auth/login/", auth=("nobody", PASSWORD))).status_code == 401

    # Login, use, logout; logoutall; then the named key's own logout (deactivation + invalidation).
    response = await client.post("/api/v1/auth/login/", auth=("logged", PASSWORD))
    assert response.status_code == 200
    token = response.json()["token"]
    secrets += [token, keys.digest_of(token)]
    assert (await client.get(PROBE, headers={"Authorization": f"Token {token}"})).status_code == 200
    assert (await client.post("/api/v1/auth/logout/", headers={"Authorization": f"Token {token}"})).status_code == 204
    assert (await client.get(PROBE, headers={"Authorization": f"Token {token}"})).status_code == 401
    again = (await client.post("/api/v1/auth/login/", auth=("logged", PASSWORD))).json()["token"]
    secrets += [again, keys.digest_of(again)]
    assert (
        await client.post("/api/v1/auth/logoutall/", headers={"Authorization": f"Token {again}"})
    ).status_code == 204
    assert (await client.post("/api/v1/auth/logout/", headers={"Authorization": f"Token {named}"})).status_code == 204
    assert (await client.get(PROBE, headers={"Authorization": f"Token {named}"})).status_code == 401

    # The capture really saw the traffic (SQL echo included), so an empty leak list means something.
    assert any(r.name.startswith("sqlalchemy.engine") and "api_key" in r.getMessage() for r in caplog.records)
    assert leaks(caplog, secrets) == []


SECRET_VALUE = "s3cret-value-log-me-not"


async def test_secret_values_never_reach_the_logs(
    client: httpx.AsyncClient, runtime: Runtime, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """Created, rotated, applied, described, used, refused: neither a value nor its ciphertext is logged."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
    staff = world["staff_a"].headers
    values = [SECRET_VALUE, SECRET_VALUE + "-rotated", SECRET_VALUE + "-applied"]

    created = await client.post("/api/v1/secrets/", headers=staff, json={"name": "logged", "value": values[0]})
    assert created.status_code == 201
    secret_id = created.json()["id"]
    assert (
        await client.patch(f"/api/v1/secrets/{secret_id}/", headers=staff, json={"value": values[1]})
    ).status_code == 200
    duplicate = await client.post("/api/v1/secrets/", headers=staff, json={"name": "logged", "value": values[0]})
    assert duplicate.status_code == 409
    manifest = {
        "apiVersion": "smarter.sh/v1",
        "kind": "Secret",
        "metadata": {"name": "logged", "description": "", "version": "1.0.0"},
        "spec": {"config": {"value": values[2]}},
    }
    assert (await client.post("/api/v1/cli/apply/", headers=staff, json=manifest)).status_code == 200
    bad = {**manifest, "spec": {"config": {"value": values[2], "expiration_date": "2001-01-01T00:00:00Z"}}}
    assert (await client.post("/api/v1/cli/apply/", headers=staff, json=bad)).status_code == 422
    described = await client.post("/api/v1/cli/describe/secret/", headers=staff, params={"name": "logged"})
    assert described.status_code == 200
    async with unit_of_work(runtime) as session:
        assert await secrets.reveal(session, runtime.cipher, secret_id, now=utcnow()) == values[2]
        token = (await session.execute(select(Secret.encrypted_value).where(Secret.id == secret_id))).scalar_one()

    assert any(r.name.startswith("sqlalchemy.engine") and "secret" in r.getMessage() for r in caplog.records)
    assert leaks(caplog, [*values, token]) == []
