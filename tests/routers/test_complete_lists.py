"""Lists are complete without `limit` (every row in scope, streamed, no `Link`) and page with it.

The batch sizes are lowered so that a handful of rows crosses several batches: the keyset reads that
follow the first batch (on their own session) are what these tests exercise.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.routers import lists
from app.services.plugins import lists as plugin_lists
from tests.support import World

COLLECTIONS = (
    "/api/v1/accounts/",
    "/api/v1/accounts/users/",
    "/api/v1/accounts/user-profiles/",
    "/api/v1/accounts/contacts/",
    "/api/v1/plugins/",
    "/api/v1/api-keys/",
    "/api/v1/secrets/",
    "/api/v1/connections/sql/",
    "/api/v1/connections/api/",
)
CONNECTIONS = {
    "/api/v1/connections/sql/": {"dbEngine": "postgresql", "hostname": "db.example.com", "database": "d"},
    "/api/v1/connections/api/": {"baseUrl": "https://api.example.com/"},
}


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lists, "BATCH", 2)
    monkeypatch.setattr(plugin_lists, "_BATCH", 2)


async def _seed(client: httpx.AsyncClient, world: World) -> None:
    admin = world["superuser"].headers
    for n in range(3):
        body = {"name": f"listed_{n}"}
        assert (await client.post("/api/v1/plugins/", json=body, headers=world["staff_a"].headers)).status_code == 201
        assert (await client.post("/api/v1/plugins/", json=body, headers=world["staff_b"].headers)).status_code == 201
        for account in (world.account_a, world.account_b):
            contact = {
                "accountNumber": account.account_number,
                "firstName": "Pat",
                "lastName": f"n{n}",
                "email": f"pat{n}@{account.name}.example.com",
            }
            assert (await client.post("/api/v1/accounts/contacts/", json=contact, headers=admin)).status_code == 201
        for path, fields in CONNECTIONS.items():
            for actor in ("staff_a", "staff_b"):
                response = await client.post(path, json={"name": f"listed_{n}", **fields}, headers=world[actor].headers)
                assert response.status_code == 201, response.text
        key = {"name": f"extra_{n}"}
        assert (await client.post("/api/v1/api-keys/", json=key, headers=world["staff_a"].headers)).status_code == 201
        for actor in ("staff_a", "staff_b"):
            secret = {"name": f"listed_{n}", "value": f"listed-value-{n}"}
            assert (await client.post("/api/v1/secrets/", json=secret, headers=world[actor].headers)).status_code == 201


async def _all_pages(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    url: str | None = f"{path}?limit=2"
    while url:
        response = await client.get(url, headers=headers)
        assert response.status_code == 200
        rows += response.json()
        url = response.links.get("next", {}).get("url")
    return rows


@pytest.mark.parametrize("path", COLLECTIONS)
@pytest.mark.parametrize("actor", ["superuser", "staff_a", "regular_b"])
async def test_without_limit_every_row_in_scope_with_limit_pages(
    client: httpx.AsyncClient, world: World, path: str, actor: str
) -> None:
    await _seed(client, world)
    headers = world[actor].headers
    complete = await client.get(path, headers=headers)
    assert complete.status_code == 200, complete.text
    assert "link" not in complete.headers
    assert complete.headers["content-type"] == "application/json"
    rows = complete.json()
    ids = [row["id"] for row in rows]
    assert ids == sorted(set(ids), reverse=True)  # newest first, each once
    assert rows == await _all_pages(client, path, headers)  # the same rows as every page, in order
    assert (await client.get(f"{path}?limit=1000", headers=headers)).json() == rows
    if actor == "superuser":
        assert len(rows) >= 3  # two batches of two at least
    skipped = await client.get(f"{path}?offset=3", headers=headers)
    assert skipped.json() == rows[3:]


async def test_rows_outside_the_scope_stay_out(client: httpx.AsyncClient, world: World) -> None:
    await _seed(client, world)
    names = {
        row["accountNumber"] for row in (await client.get("/api/v1/accounts/", headers=world["staff_b"].headers)).json()
    }
    assert names == {world.account_b.account_number}
    contacts = (await client.get("/api/v1/accounts/contacts/", headers=world["staff_b"].headers)).json()
    assert {c["account"]["accountNumber"] for c in contacts} == {world.account_b.account_number}
    assert {f"pat{n}@tenant_b.example.com" for n in range(3)} <= {c["email"] for c in contacts}


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=x", "offset=-1"])
async def test_bad_pages_are_422(client: httpx.AsyncClient, world: World, query: str) -> None:
    for path in COLLECTIONS:
        response = await client.get(f"{path}?{query}", headers=world["superuser"].headers)
        assert response.status_code == 422, (path, response.text)


async def test_openapi_declares_the_link_header(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    for path in COLLECTIONS:
        ok = document["paths"][path]["get"]["responses"]["200"]
        assert "Link" in ok["headers"], path
        assert "application/json" in ok["content"], path
        limit = next(p for p in document["paths"][path]["get"]["parameters"] if p["name"] == "limit")
        assert not limit.get("required", False)
