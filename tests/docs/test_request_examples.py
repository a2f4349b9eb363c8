"""The OpenAPI document's examples work: each request body example, sent as is by the admin (what Swagger UI's
"Try it out" then "Execute" does), succeeds; each error status shows its own example."""

from __future__ import annotations

from typing import Any

import httpx

from app.runtime import Runtime
from app.services import accounts
from tests import support

# Every operation with a body, in the order a user trying them one after the other would: what a later one
# names (an id in its path, the account `1234-5678-9012` of ProfileCreate's example) exists by then.
# Path ids come from the response of an earlier step (`from_step`).
PLAN: list[tuple[str, str, str | None]] = [
    ("post", "/api/v1/accounts/", None),
    ("patch", "/api/v1/accounts/{id}/", "post /api/v1/accounts/"),
    ("post", "/api/v1/accounts/users/", None),
    ("patch", "/api/v1/accounts/users/{id}/", "post /api/v1/accounts/users/"),
    ("post", "/api/v1/accounts/user-profiles/", None),
    ("patch", "/api/v1/accounts/user-profiles/{id}/", "post /api/v1/accounts/user-profiles/"),
    ("post", "/api/v1/accounts/contacts/", None),
    ("patch", "/api/v1/accounts/contacts/{id}/", "post /api/v1/accounts/contacts/"),
    ("post", "/api/v1/api-keys/", None),
    ("patch", "/api/v1/api-keys/{id}/", "post /api/v1/api-keys/"),
    ("post", "/api/v1/plugins/", None),
    ("patch", "/api/v1/plugins/{id}/", "post /api/v1/plugins/"),
    ("post", "/api/v1/plugins/{id}/clone/", "post /api/v1/plugins/"),
    ("put", "/api/v1/plugins/{id}/data/", "post /api/v1/plugins/"),
    ("put", "/api/v1/plugins/{id}/prompt/", "post /api/v1/plugins/"),
    ("patch", "/api/v1/plugins/{id}/prompt/", "post /api/v1/plugins/"),
    ("put", "/api/v1/plugins/{id}/selector/", "post /api/v1/plugins/"),
    ("post", "/api/v1/secrets/", None),
    ("patch", "/api/v1/secrets/{id}/", "post /api/v1/secrets/"),
    # The SQL connection's example names the secrets' example (`warehouse_password`).
    ("post", "/api/v1/connections/sql/", None),
    ("patch", "/api/v1/connections/sql/{id}/", "post /api/v1/connections/sql/"),
    ("put", "/api/v1/connections/sql/{id}/", "post /api/v1/connections/sql/"),
    ("post", "/api/v1/connections/api/", None),
    ("patch", "/api/v1/connections/api/{id}/", "post /api/v1/connections/api/"),
    ("put", "/api/v1/connections/api/{id}/", "post /api/v1/connections/api/"),
    ("post", "/api/v1/plugins/selection/", None),
    ("post", "/api/v1/plugins/{id}/call/", "post /api/v1/plugins/"),
    ("post", "/api/v1/cli/validate/", None),
    ("post", "/api/v1/cli/apply/", None),
]


def body_operations(document: dict[str, Any]) -> set[str]:
    return {
        f"{method} {path}"
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "requestBody" in operation
    }


async def test_every_request_example_succeeds_as_the_admin(client: httpx.AsyncClient, runtime: Runtime) -> None:
    world = await support.seed_world(runtime)
    async with support.unit_of_work(runtime) as session:
        await accounts.create_account(
            session, name="example_co", company_name="Example Co.", account_number="1234-5678-9012"
        )
    document = (await client.get("/openapi.json")).json()
    assert body_operations(document) == {f"{method} {path}" for method, path, _ in PLAN}, "a body operation is new"
    created: dict[str, dict[str, Any]] = {}
    for method, path, from_step in PLAN:
        media = document["paths"][path][method]["requestBody"]["content"]["application/json"]
        assert "example" in media, f"{method} {path} has no request example"
        url = path.format(id=created[from_step]["id"]) if from_step else path
        response = await client.request(method, url, json=media["example"], headers=world["superuser"].headers)
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        created[f"{method} {path}"] = response.json()


async def test_each_error_status_shows_its_own_example(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    seen: set[str] = set()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            for status, response in operation.get("responses", {}).items():
                if not status.isdigit() or int(status) < 400:
                    continue
                for media in response["content"].values():
                    example = media["example"]
                    shown = example["error"]["status"] if "error" in example else example["status"]
                    assert shown == int(status), (method, path, status)
                    seen.add(status)
    assert {"401", "404", "413", "422", "503"} <= seen
