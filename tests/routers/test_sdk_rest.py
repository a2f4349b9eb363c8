"""The official SDK's REST reads (`smarter-api==0.6.0`) against a live server, unchanged.

`accounts` (list, retrieve, find), `accounts.users`, `accounts.user_profiles`, `accounts.contacts` (list,
retrieve) and `plugins` (list, retrieve, find): as the platform's superuser, and as a tenant's staff user
who must not see another tenant's objects (the SDK's NotFoundError: the API's 404 outside the read scope).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from smarter import Smarter
from smarter.core.exceptions import NotFoundError

from tests import support
from tests.live import PROJECT_ROOT, live_server

pytestmark = pytest.mark.slow


@dataclass
class Tenant:
    account: dict[str, Any]
    user: dict[str, Any]
    contact: dict[str, Any]
    plugin: dict[str, Any]
    key: str


@dataclass
class Platform:
    base_url: str
    admin_key: str
    tenants: dict[str, Tenant]

    def sdk(self, key: str) -> Smarter:
        return Smarter(api_key=key, base_url=self.base_url, max_retries=0, timeout=30)


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _issue_key(database_url: str, username: str) -> str:
    """A key for a tenant's staff user, issued as an operator does: with the CLI."""
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "create-api-key", "--username", username, "--name", "sdk"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DATABASE_URL": database_url, "SMARTER_CORE_LOG_LEVEL": "warning"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def _tenant(http: httpx.Client, database_url: str, name: str) -> Tenant:
    account = _created(http.post("/api/v1/accounts/", json={"name": name, "companyName": f"{name} Inc."}))
    number = account["accountNumber"]
    username = f"{name}_staff"
    user = _created(
        http.post(
            "/api/v1/accounts/users/",
            json={"username": username, "email": f"{username}@example.com", "isStaff": True, "accountNumber": number},
        )
    )
    contact = _created(
        http.post(
            "/api/v1/accounts/contacts/",
            json={"accountNumber": number, "firstName": "Pat", "lastName": name, "email": f"pat@{name}.example.com"},
        )
    )
    key = _issue_key(database_url, username)
    plugin = _created(
        http.post("/api/v1/plugins/", json={"name": f"{name}_plugin"}, headers={"Authorization": f"Token {key}"})
    )
    return Tenant(account=account, user=user, contact=contact, plugin=plugin, key=key)


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    url = asyncio.run(support.fresh_database_url())
    try:
        with live_server(url, SMARTER_CORE_ENVIRONMENT="sdk-rest-test") as live:
            headers = {"Authorization": f"Token {live.admin_key}"}
            with httpx.Client(base_url=live.base_url, headers=headers, timeout=30) as http:
                tenants = {name: _tenant(http, url, name) for name in ("sdk_b", "sdk_c")}
            yield Platform(base_url=live.base_url, admin_key=live.admin_key, tenants=tenants)
    finally:
        if url.startswith("postgresql"):
            asyncio.run(support.drop_postgres_database(url))


@pytest.fixture(scope="module")
def admin(platform: Platform) -> Iterator[Smarter]:
    with platform.sdk(platform.admin_key) as client:
        yield client


@pytest.fixture(scope="module")
def tenant_b(platform: Platform) -> Iterator[Smarter]:
    with platform.sdk(platform.tenants["sdk_b"].key) as client:
        yield client


def test_accounts_list_retrieve_find(admin: Smarter, platform: Platform) -> None:
    b = platform.tenants["sdk_b"].account
    numbers = {account.account_number for account in admin.accounts.list()}
    assert {b["accountNumber"], platform.tenants["sdk_c"].account["accountNumber"], "3141-5926-5359"} <= numbers
    for id_ in (b["id"], b["hashedId"]):
        retrieved = admin.accounts.retrieve(id_)
        assert (retrieved.id, retrieved.name, retrieved.company_name) == (b["id"], "sdk_b", "sdk_b Inc.")
    assert admin.accounts.find("sdk_b").account_number == b["accountNumber"]


def test_users_list_and_retrieve(admin: Smarter, platform: Platform) -> None:
    b = platform.tenants["sdk_b"].user
    usernames = {user.username for user in admin.accounts.users.list()}
    assert {"admin", "sdk_b_staff", "sdk_c_staff"} <= usernames
    retrieved = admin.accounts.users.retrieve(b["id"])
    assert (retrieved.id, retrieved.username, retrieved.email, retrieved.is_staff) == (
        b["id"],
        "sdk_b_staff",
        "sdk_b_staff@example.com",
        True,
    )


def test_user_profiles_list_and_retrieve(admin: Smarter, platform: Platform) -> None:
    number = platform.tenants["sdk_b"].account["accountNumber"]
    profiles = [p for p in admin.accounts.user_profiles.list() if p.user.username == "sdk_b_staff"]
    assert [p.account.account_number for p in profiles] == [number]
    retrieved = admin.accounts.user_profiles.retrieve(profiles[0].id)
    assert (retrieved.user.username, retrieved.account.account_number) == ("sdk_b_staff", number)


def test_contacts_list_and_retrieve(admin: Smarter, platform: Platform) -> None:
    contact = platform.tenants["sdk_b"].contact
    emails = {c.email for c in admin.accounts.contacts.list()}
    assert {"pat@sdk_b.example.com", "pat@sdk_c.example.com"} <= emails
    retrieved = admin.accounts.contacts.retrieve(contact["id"])
    assert (retrieved.email, retrieved.last_name) == ("pat@sdk_b.example.com", "sdk_b")
    assert retrieved.account is not None
    assert retrieved.account.account_number == platform.tenants["sdk_b"].account["accountNumber"]


def test_plugins_list_retrieve_find(tenant_b: Smarter, platform: Platform) -> None:
    plugin = platform.tenants["sdk_b"].plugin
    assert "sdk_b_plugin" in {p.name for p in tenant_b.plugins.list()}
    for id_ in (plugin["id"], plugin["hashedId"]):
        assert tenant_b.plugins.retrieve(id_).metadata.name == "sdk_b_plugin"
    assert tenant_b.plugins.find("sdk_b_plugin").id == plugin["id"]


def test_a_tenant_reads_only_its_own(tenant_b: Smarter, platform: Platform) -> None:
    b, c = platform.tenants["sdk_b"], platform.tenants["sdk_c"]
    assert {a.account_number for a in tenant_b.accounts.list()} == {b.account["accountNumber"]}
    assert "sdk_c_plugin" not in {p.name for p in tenant_b.plugins.list()}
    assert "sdk_c_staff" not in {u.username for u in tenant_b.accounts.users.list()}
    contacts = tenant_b.accounts.contacts.list()
    assert "pat@sdk_b.example.com" in {contact.email for contact in contacts}
    assert {contact.account.account_number for contact in contacts if contact.account} == {b.account["accountNumber"]}
    not_found = [
        lambda: tenant_b.accounts.retrieve(c.account["id"]),
        lambda: tenant_b.accounts.users.retrieve(c.user["id"]),
        lambda: tenant_b.accounts.contacts.retrieve(c.contact["id"]),
        lambda: tenant_b.plugins.retrieve(c.plugin["id"]),
    ]
    for read in not_found:
        with pytest.raises(NotFoundError):
            read()
