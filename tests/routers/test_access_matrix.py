"""The authorization matrix: every route × every kind of principal → the status the contract prescribes.

`TABLE` is the single source of truth: one row per (method, path template) of the app, with how to build the
concrete request from the seeded world and the expected status for each principal. Routes are discovered from
`app.routes`, and a route without a row (or a row without a route) fails `test_table_covers_every_route`, so
a new endpoint cannot ship without deciding who may call it.

Every target object belongs to tenant A (or is its staff user's key), so the B principals show the
"outside read scope → 404" rule and the A principals the "readable but not allowed → 403" rule.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import select

from app.models import AccountContact
from app.runtime import Runtime
from tests.support import World

# `multi` is the shared user: a regular user with profiles in A and B (A first), on a login token.
PRINCIPALS = ("anonymous", "bad_key", "superuser", "staff_a", "regular_a", "staff_b", "regular_b", "multi")
# Well-formed (64 lowercase hex) but unknown, so it reaches the key lookup instead of the format check.
BAD_KEY_HEADERS = {"Authorization": "Token " + "0" * 64}
# Methods Starlette may add on its own; they are not routes anyone wrote.
IMPLICIT_METHODS = {"HEAD", "OPTIONS"}
PLUGIN_MANIFEST = Path(__file__).parent.parent / "manifests" / "data" / "static-plugin.yaml"
TARGET_PLUGIN = "target_plugin"


@dataclass(frozen=True)
class Context:
    """What a row's builder may use: the seeded world, an HTTP client and the runtime (for ids)."""

    client: httpx.AsyncClient
    world: World
    runtime: Runtime
    principal: str


@dataclass(frozen=True)
class Call:
    url: str
    json: Any = None
    params: dict[str, str] = field(default_factory=dict)


Build = Callable[[Context], Awaitable[Call]]


@dataclass(frozen=True)
class Row:
    build: Build
    expected: dict[str, int]


def expect(
    superuser: int,
    staff_a: int,
    regular_a: int,
    staff_b: int,
    regular_b: int,
    *,
    public: int = 401,
    multi: int | None = None,
) -> dict:
    """Statuses by principal; `public` is what anonymous and bad-key callers get (401 unless the route is open);
    the shared user `multi` gets what regular A gets unless given."""
    return {
        "multi": regular_a if multi is None else multi,
        "anonymous": public,
        "bad_key": public,
        "superuser": superuser,
        "staff_a": staff_a,
        "regular_a": regular_a,
        "staff_b": staff_b,
        "regular_b": regular_b,
    }


# Shorthands for the recurring shapes (superuser, staff A, regular A, staff B, regular B).
EVERYONE = (200, 200, 200, 200, 200)
READ_A = (200, 200, 200, 404, 404)  # members of A and the superuser can read; B cannot see it exists
OWN_A = (200, 200, 403, 404, 404)  # readable by regular A, but the change needs ownership/staff
STAFF_CREATE = (201, 201, 403, 201, 403)
DELETE_OWN_A = (204, 204, 403, 404, 404)


# --- targets (all in tenant A) ------------------------------------------------------------------------------


async def plugin_a(ctx: Context) -> int:
    """A plugin of account A owned by staff A (created through the API, like a user would)."""
    response = await ctx.client.post(
        "/api/v1/plugins/", json={"name": TARGET_PLUGIN}, headers=ctx.world["staff_a"].headers
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def contact_of_regular_a(ctx: Context) -> int:
    async with ctx.runtime.sessionmaker() as session:
        statement = select(AccountContact.id).where(
            AccountContact.account_id == ctx.world.account_a.id, AccountContact.email == "regular_a@example.com"
        )
        return int((await session.execute(statement)).scalar_one())


def fixed(url: str, json: Any = None, params: dict[str, str] | None = None) -> Build:
    async def build(ctx: Context) -> Call:
        return Call(url, json, params or {})

    return build


def account_a(suffix: str = "", json: Any = None) -> Build:
    async def build(ctx: Context) -> Call:
        return Call(f"/api/v1/accounts/{ctx.world.account_a.id}/{suffix}", json)

    return build


def user_regular_a(json: Any = None) -> Build:
    async def build(ctx: Context) -> Call:
        return Call(f"/api/v1/accounts/users/{ctx.world['regular_a'].user.id}/", json)

    return build


def profile_of(actor: str, json: Any = None) -> Build:
    async def build(ctx: Context) -> Call:
        return Call(f"/api/v1/accounts/user-profiles/{ctx.world[actor].profile.id}/", json)

    return build


def contact_a(json: Any = None) -> Build:
    async def build(ctx: Context) -> Call:
        return Call(f"/api/v1/accounts/contacts/{await contact_of_regular_a(ctx)}/", json)

    return build


def plugin(suffix: str = "", json: Any = None) -> Build:
    async def build(ctx: Context) -> Call:
        return Call(f"/api/v1/plugins/{await plugin_a(ctx)}/{suffix}", json)

    return build


def key_of_staff_a(suffix: str = "", json: Any = None) -> Build:
    async def build(ctx: Context) -> Call:
        return Call(f"/api/v1/api-keys/{ctx.world['staff_a'].key_row.id}/{suffix}", json)

    return build


def secret_of_staff_a(json: Any = None) -> Build:
    """A secret of account A owned by staff A (ownership scope: regular A cannot see it either)."""

    async def build(ctx: Context) -> Call:
        body = {"name": "target_secret", "value": "target-secret-value"}
        response = await ctx.client.post("/api/v1/secrets/", json=body, headers=ctx.world["staff_a"].headers)
        assert response.status_code == 201, response.text
        return Call(f"/api/v1/secrets/{response.json()['id']}/", json)

    return build


# Connections of account A owned by staff A. Their hosts are loopback: `test/` answers `ok: false` at once
# under the default network policy, without a connection attempt.
CONNECTION_BODIES = {
    "sql": {"dbEngine": "postgresql", "hostname": "127.0.0.1", "database": "x", "timeout": 1},
    "api": {"baseUrl": "http://127.0.0.1:9/", "timeout": 1},
}


def connection(kind: str, suffix: str = "", json: Any = None) -> Build:
    async def build(ctx: Context) -> Call:
        body = {"name": "target_connection", **CONNECTION_BODIES[kind]}
        base = f"/api/v1/connections/{kind}/"
        response = await ctx.client.post(base, json=body, headers=ctx.world["staff_a"].headers)
        assert response.status_code == 201, response.text
        return Call(f"{base}{response.json()['id']}/{suffix}", json)

    return build


def named(make: Callable[[str], Any], url: str) -> Build:
    """A create: the body is named after the principal, so the status reflects authorization, not a 409."""

    async def build(ctx: Context) -> Call:
        return Call(url, make(ctx.principal))

    return build


async def add_regular_b_to_a(ctx: Context) -> Call:
    body = {"username": "regular_b", "accountNumber": ctx.world.account_a.account_number}
    return Call("/api/v1/accounts/user-profiles/", body)


def cli_on_plugin_a(command: str) -> Build:
    """A manifest command naming staff A's plugin."""

    async def build(ctx: Context) -> Call:
        await plugin_a(ctx)
        return Call(f"/api/v1/cli/{command}/plugin/", params={"name": TARGET_PLUGIN})

    return build


def cli_on_key_of_staff_a(command: str) -> Build:
    async def build(ctx: Context) -> Call:
        return Call(f"/api/v1/cli/{command}/smarterauthtoken/", params={"name": ctx.world["staff_a"].key_row.name})

    return build


def plugin_manifest(principal: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(PLUGIN_MANIFEST.read_text())
    document["metadata"]["name"] = f"manifest_{principal}"
    return document


CLI = "/api/v1/cli"
PROMPT = {"systemRole": "Be brief.", "temperature": 0.2}

TABLE: dict[tuple[str, str], Row] = {
    # health: open to everyone, credentials or not
    ("GET", "/healthz"): Row(fixed("/healthz"), expect(*EVERYONE, public=200)),
    ("GET", "/readyz"): Row(fixed("/readyz"), expect(*EVERYONE, public=200)),
    # Swagger UI and ReDoc (fastapi-offline declares them as API routes): pages for everyone.
    ("GET", "/docs"): Row(fixed("/docs"), expect(*EVERYONE, public=200)),
    ("GET", "/docs/oauth2-redirect"): Row(fixed("/docs/oauth2-redirect"), expect(*EVERYONE, public=200)),
    ("GET", "/redoc"): Row(fixed("/redoc"), expect(*EVERYONE, public=200)),
    # auth: login takes Basic credentials only, so a Token header (good or bad) is a failed login
    ("POST", "/api/v1/auth/login/"): Row(fixed("/api/v1/auth/login/"), expect(401, 401, 401, 401, 401)),
    ("POST", "/api/v1/auth/logout/"): Row(fixed("/api/v1/auth/logout/"), expect(204, 204, 204, 204, 204)),
    ("POST", "/api/v1/auth/logoutall/"): Row(fixed("/api/v1/auth/logoutall/"), expect(204, 204, 204, 204, 204)),
    # accounts
    ("GET", "/api/v1/accounts/"): Row(fixed("/api/v1/accounts/"), expect(*EVERYONE)),
    ("POST", "/api/v1/accounts/"): Row(
        named(lambda p: {"name": f"new_{p}", "companyName": "New"}, "/api/v1/accounts/"),
        expect(201, 403, 403, 403, 403),
    ),
    ("GET", "/api/v1/accounts/{id}/"): Row(account_a(), expect(*READ_A)),
    ("PATCH", "/api/v1/accounts/{id}/"): Row(account_a(json={"companyName": "Renamed"}), expect(*OWN_A)),
    ("DELETE", "/api/v1/accounts/{id}/"): Row(account_a(), expect(204, 403, 403, 404, 404)),
    # users (target: regular A, who may read and rename themselves but not delete themselves)
    ("GET", "/api/v1/accounts/users/"): Row(fixed("/api/v1/accounts/users/"), expect(*EVERYONE)),
    ("POST", "/api/v1/accounts/users/"): Row(
        named(lambda p: {"username": f"new_{p}"}, "/api/v1/accounts/users/"), expect(*STAFF_CREATE)
    ),
    # (`multi`, a regular user, sees only themselves.)
    ("GET", "/api/v1/accounts/users/{id}/"): Row(user_regular_a(), expect(*READ_A, multi=404)),
    ("PATCH", "/api/v1/accounts/users/{id}/"): Row(user_regular_a({"firstName": "Reggie"}), expect(*READ_A, multi=404)),
    ("DELETE", "/api/v1/accounts/users/{id}/"): Row(user_regular_a(), expect(*DELETE_OWN_A, multi=404)),
    # profiles (target: regular A's own; deletes target multi's profile in A, as a last profile is a 409)
    ("GET", "/api/v1/accounts/user-profiles/"): Row(fixed("/api/v1/accounts/user-profiles/"), expect(*EVERYONE)),
    ("POST", "/api/v1/accounts/user-profiles/"): Row(
        add_regular_b_to_a,
        expect(201, 403, 403, 403, 403),
    ),
    ("GET", "/api/v1/accounts/user-profiles/{id}/"): Row(profile_of("regular_a"), expect(*READ_A, multi=404)),
    ("PATCH", "/api/v1/accounts/user-profiles/{id}/"): Row(
        profile_of("regular_a", {"isTest": True}), expect(*READ_A, multi=404)
    ),
    ("DELETE", "/api/v1/accounts/user-profiles/{id}/"): Row(
        profile_of("multi"), expect(204, 204, 404, 404, 404, multi=403)
    ),
    # contacts (target: regular A's contact; members read, staff write)
    ("GET", "/api/v1/accounts/contacts/"): Row(fixed("/api/v1/accounts/contacts/"), expect(*EVERYONE)),
    ("POST", "/api/v1/accounts/contacts/"): Row(
        named(
            lambda p: {"firstName": "Jane", "lastName": "Doe", "email": f"{p}@contacts.example.com"},
            "/api/v1/accounts/contacts/",
        ),
        expect(*STAFF_CREATE),
    ),
    ("GET", "/api/v1/accounts/contacts/{id}/"): Row(contact_a(), expect(*READ_A)),
    ("PATCH", "/api/v1/accounts/contacts/{id}/"): Row(contact_a({"phone": "555"}), expect(*OWN_A)),
    ("DELETE", "/api/v1/accounts/contacts/{id}/"): Row(contact_a(), expect(*DELETE_OWN_A)),
    # plugins (target: staff A's plugin; any member reads and clones, the owner's staff writes)
    ("GET", "/api/v1/plugins/"): Row(fixed("/api/v1/plugins/"), expect(*EVERYONE)),
    ("POST", "/api/v1/plugins/"): Row(
        named(lambda p: {"name": f"plugin_{p}"}, "/api/v1/plugins/"), expect(201, 201, 201, 201, 201)
    ),
    ("GET", "/api/v1/plugins/{id}/"): Row(plugin(), expect(*READ_A)),
    ("PATCH", "/api/v1/plugins/{id}/"): Row(plugin(json={"description": "changed"}), expect(*OWN_A)),
    ("DELETE", "/api/v1/plugins/{id}/"): Row(plugin(), expect(*DELETE_OWN_A)),
    ("POST", "/api/v1/plugins/{id}/clone/"): Row(
        plugin("clone/", {"name": "the_clone"}), expect(201, 201, 201, 404, 404)
    ),
    ("GET", "/api/v1/plugins/{id}/prompt/"): Row(plugin("prompt/"), expect(*READ_A)),
    ("PUT", "/api/v1/plugins/{id}/prompt/"): Row(plugin("prompt/", PROMPT), expect(*OWN_A)),
    ("PATCH", "/api/v1/plugins/{id}/prompt/"): Row(plugin("prompt/", {"temperature": 0.3}), expect(*OWN_A)),
    ("GET", "/api/v1/plugins/{id}/selector/"): Row(plugin("selector/"), expect(*READ_A)),
    ("PUT", "/api/v1/plugins/{id}/selector/"): Row(plugin("selector/", {"directive": "always"}), expect(*OWN_A)),
    ("GET", "/api/v1/plugins/{id}/data/"): Row(plugin("data/"), expect(*READ_A)),
    ("PUT", "/api/v1/plugins/{id}/data/"): Row(plugin("data/", {"staticData": {"a": 1}}), expect(*OWN_A)),
    # the plugin runtime: selection reads the caller's scope; a tool, a call and a test need the read scope (the
    # target has no static data: the call's argument is refused (422) and the test has nothing to ask (409))
    ("POST", "/api/v1/plugins/selection/"): Row(
        fixed("/api/v1/plugins/selection/", {"prompt": "hi"}), expect(*EVERYONE)
    ),
    ("GET", "/api/v1/plugins/{id}/tool/"): Row(plugin("tool/"), expect(*READ_A)),
    ("POST", "/api/v1/plugins/{id}/call/"): Row(
        plugin("call/", {"arguments": {"inquiry_type": "a"}}), expect(422, 422, 422, 404, 404)
    ),
    ("POST", "/api/v1/plugins/{id}/test/"): Row(plugin("test/"), expect(409, 409, 409, 404, 404)),
    # api keys (target: staff A's key; ownership scope even for reads, so regular A gets 404, not 403)
    ("GET", "/api/v1/api-keys/"): Row(fixed("/api/v1/api-keys/"), expect(*EVERYONE)),
    ("POST", "/api/v1/api-keys/"): Row(
        named(lambda p: {"name": f"key_{p}"}, "/api/v1/api-keys/"), expect(*STAFF_CREATE)
    ),
    ("GET", "/api/v1/api-keys/{id}/"): Row(key_of_staff_a(), expect(200, 200, 404, 404, 404)),
    ("PATCH", "/api/v1/api-keys/{id}/"): Row(
        key_of_staff_a(json={"description": "x"}), expect(200, 200, 404, 404, 404)
    ),
    ("DELETE", "/api/v1/api-keys/{id}/"): Row(key_of_staff_a(), expect(204, 204, 404, 404, 404)),
    ("POST", "/api/v1/api-keys/{id}/activate/"): Row(key_of_staff_a("activate/"), expect(200, 200, 404, 404, 404)),
    ("POST", "/api/v1/api-keys/{id}/deactivate/"): Row(key_of_staff_a("deactivate/"), expect(200, 200, 404, 404, 404)),
    ("POST", "/api/v1/api-keys/{id}/toggle-active/"): Row(
        key_of_staff_a("toggle-active/"), expect(200, 200, 404, 404, 404)
    ),
    # secrets (target: staff A's secret; ownership scope for reads too, like keys; any member creates)
    ("GET", "/api/v1/secrets/"): Row(fixed("/api/v1/secrets/"), expect(*EVERYONE)),
    ("POST", "/api/v1/secrets/"): Row(
        named(lambda p: {"name": f"secret_{p}", "value": f"value-of-{p}"}, "/api/v1/secrets/"),
        expect(201, 201, 201, 201, 201),
    ),
    ("GET", "/api/v1/secrets/{id}/"): Row(secret_of_staff_a(), expect(200, 200, 404, 404, 404)),
    ("PATCH", "/api/v1/secrets/{id}/"): Row(secret_of_staff_a({"description": "x"}), expect(200, 200, 404, 404, 404)),
    ("DELETE", "/api/v1/secrets/{id}/"): Row(secret_of_staff_a(), expect(204, 204, 404, 404, 404)),
    # manifests
    **{
        key: row
        for kind in ("sql", "api")
        for key, row in {
            # connections (target: staff A's; members of the account read, the ownership scope writes and tests)
            ("GET", f"/api/v1/connections/{kind}/"): Row(fixed(f"/api/v1/connections/{kind}/"), expect(*EVERYONE)),
            ("POST", f"/api/v1/connections/{kind}/"): Row(
                named(lambda p, k=kind: {"name": f"conn_{p}", **CONNECTION_BODIES[k]}, f"/api/v1/connections/{kind}/"),
                expect(201, 201, 201, 201, 201),
            ),
            ("GET", f"/api/v1/connections/{kind}/{{id}}/"): Row(connection(kind), expect(*READ_A)),
            ("PATCH", f"/api/v1/connections/{kind}/{{id}}/"): Row(
                connection(kind, json={"description": "changed"}), expect(*OWN_A)
            ),
            ("PUT", f"/api/v1/connections/{kind}/{{id}}/"): Row(
                connection(kind, json={"name": "target_connection", **CONNECTION_BODIES[kind]}), expect(*OWN_A)
            ),
            ("DELETE", f"/api/v1/connections/{kind}/{{id}}/"): Row(connection(kind), expect(*DELETE_OWN_A)),
            ("POST", f"/api/v1/connections/{kind}/{{id}}/test/"): Row(connection(kind, "test/"), expect(*OWN_A)),
        }.items()
    },
    ("POST", f"{CLI}/apply/"): Row(named(plugin_manifest, f"{CLI}/apply/"), expect(*EVERYONE)),
    ("POST", f"{CLI}/validate/"): Row(named(plugin_manifest, f"{CLI}/validate/"), expect(*EVERYONE)),
    # Manifest names resolve in the acting account, then the platform account; the superuser acts in the platform
    # account unless it names another with accountNumber, so A's plugin is not found by name for it.
    ("POST", f"{CLI}/delete/{{kind}}/"): Row(cli_on_plugin_a("delete"), expect(404, 200, 403, 404, 404)),
    ("POST", f"{CLI}/deploy/{{kind}}/"): Row(cli_on_key_of_staff_a("deploy"), expect(200, 200, 404, 404, 404)),
    ("POST", f"{CLI}/undeploy/{{kind}}/"): Row(cli_on_key_of_staff_a("undeploy"), expect(200, 200, 404, 404, 404)),
}
# Reads answer both POST (what the SDK sends) and GET, with the same rules.
for method in ("GET", "POST"):
    TABLE.update(
        {
            (method, f"{CLI}/get/{{kind}}/"): Row(fixed(f"{CLI}/get/plugin/"), expect(*EVERYONE)),
            (method, f"{CLI}/describe/{{kind}}/"): Row(cli_on_plugin_a("describe"), expect(404, 200, 200, 404, 404)),
            (method, f"{CLI}/logs/{{kind}}/"): Row(fixed(f"{CLI}/logs/plugin/"), expect(*EVERYONE)),
            (method, f"{CLI}/example-manifest/{{kind}}/"): Row(
                fixed(f"{CLI}/example-manifest/plugin/"), expect(*EVERYONE)
            ),
            (method, f"{CLI}/json-schema/{{kind}}/"): Row(fixed(f"{CLI}/json-schema/plugin/"), expect(*EVERYONE)),
            (method, f"{CLI}/whoami/"): Row(fixed(f"{CLI}/whoami/"), expect(*EVERYONE)),
            (method, f"{CLI}/version/"): Row(fixed(f"{CLI}/version/"), expect(*EVERYONE)),
            (method, f"{CLI}/status/"): Row(fixed(f"{CLI}/status/"), expect(*EVERYONE)),
            (method, f"{CLI}/resources/"): Row(fixed(f"{CLI}/resources/"), expect(*EVERYONE)),
        }
    )

# Cases where the service breaks the contract: (method, path, principal) → the rule it breaks.
# Each is an xfail(strict=True), so a fix turns it into a failure that asks for this entry to go.
KNOWN_BREAKS: dict[tuple[str, str, str], str] = {}


def discovered_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path template) of every API route, included routers resolved to their full paths."""
    found: set[tuple[str, str]] = set()
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            found.update((method, context.path) for method in context.methods or () if method not in IMPLICIT_METHODS)
    return found


def test_table_covers_every_route(app: FastAPI) -> None:
    routes = discovered_routes(app)
    assert routes, "no routes discovered: the discovery is broken, not the table"
    assert sorted(routes - TABLE.keys()) == [], "routes without a row in TABLE (decide who may call them)"
    assert sorted(TABLE.keys() - routes) == [], "rows in TABLE for routes the app no longer has"


def cases() -> list[Any]:
    params = []
    for (method, path), row in TABLE.items():
        assert set(row.expected) == set(PRINCIPALS), (method, path)
        for principal in PRINCIPALS:
            reason = KNOWN_BREAKS.get((method, path, principal))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            params.append(pytest.param(method, path, principal, id=f"{method} {path} as {principal}", marks=marks))
    return params


def headers_of(world: World, principal: str) -> dict[str, str]:
    if principal == "anonymous":
        return {}
    if principal == "bad_key":
        return BAD_KEY_HEADERS
    return world[principal].headers


@pytest.mark.parametrize(("method", "path", "principal"), cases())
async def test_access(
    client: httpx.AsyncClient, world: World, runtime: Runtime, method: str, path: str, principal: str
) -> None:
    row = TABLE[(method, path)]
    call = await row.build(Context(client, world, runtime, principal))
    response = await client.request(
        method, call.url, json=call.json, params=call.params, headers=headers_of(world, principal)
    )
    assert response.status_code == row.expected[principal], response.text
