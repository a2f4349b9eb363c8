"""`POST /api/v1/connections/{sql,api}/{id}/test/` against real targets, and the network policy.

Real targets: the local PostgreSQL and MariaDB, SQLite files, HTTP servers started here on 127.0.0.1. They are
loopback addresses: the tests that reach them set the policy to `any` (`SMARTER_CORE_PLUGIN_NETWORKS=any`);
the default policy's tests check that nothing is even attempted.
"""

from __future__ import annotations

import base64
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from app.models import Secret
from app.models.base import utcnow
from app.runtime import Runtime
from tests.connections.support import (
    API,
    SECRET_VALUE,
    SQL,
    create,
    http_server,
    mariadb_available,
    policy,
    secret,
)
from tests.support import World, unit_of_work


async def probe(client: httpx.AsyncClient, world: World, base: str, row: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"{base}{row['id']}/test/", headers=world["staff_a"].headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"ok", "latencyMs", "error"}
    assert SECRET_VALUE not in response.text
    return body


def sqlite_file(tmp_path: Path, name: str = "plugin-data") -> str:
    path = tmp_path / f"{name}.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x INTEGER)")
    return str(path)


async def test_sql_against_sqlite_postgresql_and_mariadb(
    client: httpx.AsyncClient, world: World, runtime: Runtime, tmp_path: Path
) -> None:
    staff = world["staff_a"].headers
    await secret(client, staff, "pg_password")
    lite = await create(client, SQL, staff, name="lite", dbEngine="sqlite", database=sqlite_file(tmp_path))
    missing = await create(client, SQL, staff, name="gone", dbEngine="sqlite", database=str(tmp_path / "no.db"))
    pg = await create(
        client,
        SQL,
        staff,
        name="pg",
        dbEngine="django.db.backends.postgresql",
        hostname="127.0.0.1",
        database="postgres",
        username="postgres",
        password="pg_password",  # trust authentication accepts any password
        timeout=5,
    )
    wrong_db = await create(
        client,
        SQL,
        staff,
        name="pg_nodb",
        dbEngine="postgresql",
        hostname="127.0.0.1",
        database="no_such_db_x",
        username="postgres",
        timeout=5,
    )
    with policy(runtime, "any"):
        assert (await probe(client, world, SQL, lite))["ok"] is True
        gone = await probe(client, world, SQL, missing)
        assert gone["ok"] is False
        assert "does not exist" in gone["error"]
        assert not (tmp_path / "no.db").exists()  # opening never creates a file
        result = await probe(client, world, SQL, pg)
        assert result == {"ok": True, "latencyMs": result["latencyMs"], "error": None}
        failed = await probe(client, world, SQL, wrong_db)
        assert failed["ok"] is False
        assert "no_such_db_x" in failed["error"]
        # The pooled engine is reused, and replaced when the connection changes.
        assert (await probe(client, world, SQL, pg))["ok"] is True
        await client.patch(f"{SQL}{pg['id']}/", headers=staff, json={"database": "no_such_db_y"})
        assert (await probe(client, world, SQL, pg))["ok"] is False


@pytest.mark.skipif(not mariadb_available(), reason="no MariaDB/MySQL server on 127.0.0.1:3306")
async def test_sql_against_mariadb(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    staff = world["staff_a"].headers
    row = await create(
        client,
        SQL,
        staff,
        name="maria",
        dbEngine="django.db.backends.mysql",
        hostname="127.0.0.1",
        database="mysql",
        username="root",
        timeout=5,
    )
    denied = await create(
        client,
        SQL,
        staff,
        name="maria_denied",
        dbEngine="mysql",
        hostname="127.0.0.1",
        database="mysql",
        username="no_such_user_x",
        timeout=5,
    )
    with policy(runtime, "any"):
        assert (await probe(client, world, SQL, row))["ok"] is True
        refused = await probe(client, world, SQL, denied)
        assert refused["ok"] is False
        assert "refused" in refused["error"]


async def test_api_auth_methods_against_a_local_server(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    staff = world["staff_a"].headers
    await secret(client, staff, "api_secret")
    with http_server() as (base_url, seen), policy(runtime, "any"):
        rows = {
            method: await create(
                client,
                API,
                staff,
                name=f"api_{method}",
                baseUrl=f"{base_url}/",
                authMethod=method,
                username="robot" if method == "basic" else None,
                apiKey=None if method == "none" else "api_secret",
                timeout=5,
            )
            for method in ("none", "basic", "token", "api_key")
        }
        for method, row in rows.items():
            seen.requests.clear()
            assert (await probe(client, world, API, row))["ok"] is True, method
            verb, path, headers = seen.requests[0]
            assert (verb, path) == ("HEAD", "/")
            if method == "basic":
                expected = base64.b64encode(f"robot:{SECRET_VALUE}".encode()).decode()
                assert headers["Authorization"] == f"Basic {expected}"
            elif method == "token":
                assert headers["Authorization"] == f"Bearer {SECRET_VALUE}"
            elif method == "api_key":
                assert headers["X-API-Key"] == SECRET_VALUE
            else:
                assert "Authorization" not in headers
                assert "X-API-Key" not in headers


async def test_api_failures_are_sentences_without_secrets(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    staff = world["staff_a"].headers
    await secret(client, staff, "api_secret")
    routes = {
        "/denied/": (401, {}, b"no"),
        "/broken/": (500, {}, b"oops"),
        "/head-only-fails/": (405, {}, b""),
    }
    with http_server(routes=routes) as (base_url, seen), policy(runtime, "any"):
        denied = await create(
            client, API, staff, name="denied", baseUrl=f"{base_url}/denied/", authMethod="token", apiKey="api_secret"
        )
        result = await probe(client, world, API, denied)
        assert result["ok"] is False
        assert "401" in result["error"]
        broken = await create(client, API, staff, name="broken", baseUrl=f"{base_url}/broken/")
        assert "500" in (await probe(client, world, API, broken))["error"]
        # HEAD refused, then GET: the second request is a GET (answered 405 too here, which is not a failure).
        seen.requests.clear()
        head = await create(client, API, staff, name="head", baseUrl=f"{base_url}/head-only-fails/")
        assert (await probe(client, world, API, head))["ok"] is True
        assert [verb for verb, _, _ in seen.requests] == ["HEAD", "GET"]
    with policy(runtime, "any"):  # nobody listens there any more
        closed = await probe(client, world, API, denied)
    assert closed["ok"] is False
    assert "could not be reached" in closed["error"]


async def test_expired_secret_is_409(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    staff = world["staff_a"].headers
    secret_id = await secret(client, staff, "old_token")
    row = await create(
        client, API, staff, name="old", baseUrl="https://example.com/", authMethod="token", apiKey="old_token"
    )
    async with unit_of_work(runtime) as session:
        await session.execute(
            update(Secret).where(Secret.id == secret_id).values(expires_at=utcnow() - timedelta(minutes=1))
        )
    response = await client.post(f"{API}{row['id']}/test/", headers=staff)
    assert response.status_code == 409
    assert "expired" in response.json()["detail"]


async def test_test_needs_the_ownership_scope(client: httpx.AsyncClient, world: World) -> None:
    row = await create(client, API, world["staff_a"].headers, name="staffs", baseUrl="https://example.com/")
    assert (await client.post(f"{API}{row['id']}/test/", headers=world["regular_a"].headers)).status_code == 403


# --- the default policy -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("localhost", "loopback"),  # a name: checked on the address it resolves to
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("[::1]", "loopback"),
        ("[::ffff:127.0.0.1]", "loopback"),
        ("100.64.0.1", "not public"),
    ],
)
async def test_default_policy_refuses_internal_addresses(
    client: httpx.AsyncClient, world: World, host: str, reason: str
) -> None:
    staff = world["staff_a"].headers
    api = await create(client, API, staff, name="internal_api", baseUrl=f"http://{host}:9/", timeout=2)
    refused = await probe(client, world, API, api)
    assert refused["ok"] is False
    assert reason in refused["error"]
    assert "SMARTER_CORE_PLUGIN_NETWORKS" in refused["error"]
    sql = await create(
        client,
        SQL,
        staff,
        name="internal_db",
        dbEngine="postgresql",
        hostname=host.strip("[]"),
        database="x",
        timeout=2,
    )
    refused = await probe(client, world, SQL, sql)
    assert refused["ok"] is False
    assert reason in refused["error"]


async def test_default_policy_never_connects_to_a_local_server(
    client: httpx.AsyncClient, world: World, tmp_path: Path
) -> None:
    staff = world["staff_a"].headers
    with http_server() as (base_url, seen):
        row = await create(client, API, staff, name="local", baseUrl=f"{base_url}/")
        result = await probe(client, world, API, row)
        assert result["ok"] is False
        assert seen.requests == []
    lite = await create(client, SQL, staff, name="lite", dbEngine="sqlite", database=sqlite_file(tmp_path))
    assert "SQLite files" in (await probe(client, world, SQL, lite))["error"]


async def test_redirects_to_refused_addresses_are_not_followed(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    """The policy allows one network (`public,127.0.0.1/32`): a redirect from there to another loopback
    address (127.0.0.2, where a server listens) is refused before any request reaches it."""
    staff = world["staff_a"].headers
    await secret(client, staff, "api_secret")
    with http_server("127.0.0.2") as (internal_url, internal_seen):
        routes = {
            "/": (302, {"Location": f"{internal_url}/metadata"}, b""),
            "/same-host": (307, {"Location": "/"}, b""),
        }
        with http_server(routes=routes) as (base_url, seen), policy(runtime, "public,127.0.0.1/32"):
            row = await create(
                client, API, staff, name="redirecting", baseUrl=f"{base_url}/", authMethod="token", apiKey="api_secret"
            )
            result = await probe(client, world, API, row)
            assert result["ok"] is False
            assert "127.0.0.2 is loopback" in result["error"]
            assert internal_seen.requests == []
            assert seen.requests  # the allowed hop was asked
    with http_server("127.0.0.2") as (internal_url, internal_seen):
        routes = {"/": (302, {"Location": f"{internal_url}/landing"}, b"")}
        # Allowed: the redirect is followed, and the credentials stay with the first host.
        with http_server(routes=routes) as (base_url, _seen), policy(runtime, "any"):
            row = await create(
                client, API, staff, name="redirect_ok", baseUrl=f"{base_url}/", authMethod="token", apiKey="api_secret"
            )
            assert (await probe(client, world, API, row))["ok"] is True
            assert internal_seen.requests
            assert all("Authorization" not in headers for _, _, headers in internal_seen.requests)


async def test_unusable_tls_material_is_an_answer(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    row = await create(
        client,
        SQL,
        world["staff_a"].headers,
        name="tls",
        dbEngine="postgresql",
        hostname="127.0.0.1",
        database="postgres",
        username="postgres",
        useSsl=True,
        sslCa="not a certificate",
        timeout=5,
    )
    with policy(runtime, "any"):
        result = await probe(client, world, SQL, row)
    assert result["ok"] is False
    assert "SSL" in result["error"]


async def test_deleting_a_connection_disposes_of_its_engine(
    client: httpx.AsyncClient, world: World, runtime: Runtime, tmp_path: Path
) -> None:
    staff = world["staff_a"].headers
    for name, delete in (("by_rest", "rest"), ("by_manifest", "manifest")):
        row = await create(client, SQL, staff, name=name, dbEngine="sqlite", database=sqlite_file(tmp_path, name))
        with policy(runtime, "any"):
            assert (await probe(client, world, SQL, row))["ok"] is True
        assert runtime.pools.has_engine(row["id"])
        if delete == "rest":
            response = await client.delete(f"{SQL}{row['id']}/", headers=staff)
        else:
            response = await client.post("/api/v1/cli/delete/SqlConnection/", params={"name": name}, headers=staff)
        assert response.status_code in (200, 204), response.text
        assert not runtime.pools.has_engine(row["id"])
