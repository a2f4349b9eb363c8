"""The scope predicates against the seeded world plus plugins and keys owned across accounts.

Each scope is checked by the exact set of rows it lets each principal see; `get_scoped` by its
404-versus-403 answer. Reads never create rows.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import ColumnElement, func, select

from app.errors import Forbidden, NotFound
from app.models import KIND_LOGIN, Account, AccountContact, ApiKey, Base, PluginMeta, PluginPrompt, User, UserProfile
from app.runtime import Runtime
from app.services import permissions
from app.services.principals import Principal
from tests.auth.helpers import PROBE, capture_statements, make_login_token, make_user, principal_for
from tests.support import World, unit_of_work

ACTORS = ("superuser", "staff_a", "regular_a", "staff_b", "regular_b", "multi")
ALL = "*"

# plugin name -> (owning actor, account of the owning profile)
PLUGIN_OWNERS: dict[str, tuple[str, str]] = {
    "p_platform": ("superuser", "platform"),
    "p_staff_a": ("staff_a", "a"),
    "p_regular_a": ("regular_a", "a"),
    "p_multi_a": ("multi", "a"),
    "p_multi_b": ("multi", "b"),
    "p_staff_b": ("staff_b", "b"),
    "p_regular_b": ("regular_b", "b"),
}
A_SIDE = {"p_staff_a", "p_regular_a", "p_multi_a"}
B_SIDE = {"p_multi_b", "p_staff_b", "p_regular_b"}

READ_PLUGINS: dict[str, Any] = {
    "superuser": ALL,
    "staff_a": {"p_platform", *A_SIDE},
    "regular_a": {"p_platform", *A_SIDE},
    "staff_b": {"p_platform", *B_SIDE},
    "regular_b": {"p_platform", *B_SIDE},
    "multi": ALL,
}
OWN_PLUGINS: dict[str, Any] = {
    "superuser": ALL,
    "staff_a": A_SIDE,
    "regular_a": {"p_regular_a"},
    "staff_b": B_SIDE,
    "regular_b": {"p_regular_b"},
    "multi": {"p_multi_a", "p_multi_b"},
}

# Keys are labelled `user:name` (`user:login` for login tokens); loner's token has no owner profile.
KEYS = {
    "admin:admin_bootstrap_key",
    "staff_a:staff_a_key",
    "regular_a:login",
    "multi:login",
    "staff_b:staff_b_key",
    "regular_b:login",
    "loner:login",
}
KEYS_A = {"staff_a:staff_a_key", "regular_a:login", "multi:login"}
KEYS_B = {"staff_b:staff_b_key", "regular_b:login"}
READ_KEYS: dict[str, Any] = {
    "superuser": ALL,
    "staff_a": {"admin:admin_bootstrap_key", *KEYS_A},
    "regular_a": {"admin:admin_bootstrap_key", *KEYS_A},
    "staff_b": {"admin:admin_bootstrap_key", *KEYS_B},
    "regular_b": {"admin:admin_bootstrap_key", *KEYS_B},
    "multi": KEYS - {"loner:login"},
}
OWN_KEYS: dict[str, Any] = {
    "superuser": ALL,
    "staff_a": KEYS_A,
    "regular_a": {"regular_a:login"},
    "staff_b": KEYS_B,
    "regular_b": {"regular_b:login"},
    "multi": {"multi:login"},
}
ACCOUNTS: dict[str, Any] = {
    "superuser": ALL,
    "staff_a": {"a"},
    "regular_a": {"a"},
    "staff_b": {"b"},
    "regular_b": {"b"},
    "multi": {"a", "b"},
}
USERS: dict[str, Any] = {
    "superuser": ALL,
    "staff_a": {"staff_a", "regular_a", "multi"},
    "regular_a": {"regular_a"},
    "staff_b": {"staff_b", "regular_b", "multi"},
    "regular_b": {"regular_b"},
    "multi": {"multi"},
}
PROFILES_A = {"staff_a@a", "regular_a@a", "multi@a"}
PROFILES_B = {"staff_b@b", "regular_b@b", "multi@b"}
PROFILES: dict[str, Any] = {
    "superuser": ALL,
    "staff_a": PROFILES_A,
    "regular_a": {"regular_a@a"},
    "staff_b": PROFILES_B,
    "regular_b": {"regular_b@b"},
    "multi": {"multi@a", "multi@b"},
}
# Contacts come with profiles (users with an email): labelled `email@account`.
CONTACTS_A = {"staff_a@example.com@a", "regular_a@example.com@a", "multi@example.com@a"}
CONTACTS_B = {"staff_b@example.com@b", "regular_b@example.com@b", "multi@example.com@b"}
CONTACTS: dict[str, Any] = {
    "superuser": ALL,
    "staff_a": CONTACTS_A,
    "regular_a": CONTACTS_A,
    "staff_b": CONTACTS_B,
    "regular_b": CONTACTS_B,
    "multi": CONTACTS_A | CONTACTS_B,
}


class Scene:
    """The world plus one plugin per owner and a login token of a user without any profile."""

    def __init__(self, runtime: Runtime, world: World) -> None:
        self.runtime = runtime
        self.world = world
        self.letters = {world.platform.id: "platform", world.account_a.id: "a", world.account_b.id: "b"}
        self.plugins: dict[str, int] = {}
        self.principals: dict[str, Principal] = {}

    async def build(self) -> Scene:
        loner, _ = await make_user(self.runtime, "loner", None)
        await make_login_token(self.runtime, loner)
        async with unit_of_work(self.runtime) as session:
            for name, (actor, letter) in PLUGIN_OWNERS.items():
                user_id = self.world[actor].user.id
                profile = (
                    await session.execute(
                        select(UserProfile).where(
                            UserProfile.user_id == user_id, UserProfile.account_id == self.account_id(letter)
                        )
                    )
                ).scalar_one()
                plugin = PluginMeta(
                    name=name,
                    plugin_class="static",
                    user_profile_id=profile.id,
                    account_id=profile.account_id,
                    prompt=PluginPrompt(system_role=f"You are {name}."),
                )
                plugin.tag_links = []
                session.add(plugin)
                await session.flush()
                self.plugins[name] = plugin.id
        for actor in ACTORS:
            self.principals[actor] = await principal_for(self.runtime, self.world[actor].key)
        return self

    def account_id(self, letter: str) -> int:
        return next(i for i, known in self.letters.items() if known == letter)

    async def labels(self, statement: Any) -> set[str]:
        async with self.runtime.sessionmaker() as session:
            return {str(label) for label in (await session.execute(statement)).scalars()}


def expand(expected: Any, everything: set[str]) -> set[str]:
    return set(everything) if expected == ALL else set(expected)


@pytest.fixture
async def scene(runtime: Runtime, world: World) -> Scene:
    return await Scene(runtime, world).build()


async def _key_set(scene: Scene, scope: Any, principal: Principal) -> set[str]:
    async with scene.runtime.sessionmaker() as session:
        rows = (
            await session.execute(
                select(User.username, ApiKey.kind, ApiKey.name)
                .join(User, User.id == ApiKey.user_id)
                .where(scope(principal, ApiKey))
            )
        ).all()
    return {f"{username}:{'login' if kind == KIND_LOGIN else name}" for username, kind, name in rows}


async def test_plugin_scopes(scene: Scene) -> None:
    for actor in ACTORS:
        principal = scene.principals[actor]
        for scope, table in ((permissions.read_scope, READ_PLUGINS), (permissions.ownership_scope, OWN_PLUGINS)):
            seen = await scene.labels(select(PluginMeta.name).where(scope(principal, PluginMeta)))
            assert seen == expand(table[actor], set(PLUGIN_OWNERS)), (scope.__name__, actor)


async def test_api_key_scopes(scene: Scene) -> None:
    for actor in ACTORS:
        principal = scene.principals[actor]
        for scope, table in ((permissions.read_scope, READ_KEYS), (permissions.ownership_scope, OWN_KEYS)):
            seen = await _key_set(scene, scope, principal)
            assert seen == expand(table[actor], KEYS), (scope.__name__, actor)


async def test_account_user_profile_and_contact_scopes(scene: Scene) -> None:
    for actor in ACTORS:
        await _check_people_scopes(scene, actor)


async def _check_people_scopes(scene: Scene, actor: str) -> None:
    principal = scene.principals[actor]
    letters = scene.letters

    accounts = {letters[i] for i in await _ids(scene, select(Account.id).where(permissions.account_scope(principal)))}
    assert accounts == expand(ACCOUNTS[actor], {"platform", "a", "b"}), actor

    users = await scene.labels(select(User.username).where(permissions.user_scope(principal)))
    all_users = {"admin", "staff_a", "regular_a", "staff_b", "regular_b", "multi", "loner"}
    assert users == expand(USERS[actor], all_users), actor

    async with scene.runtime.sessionmaker() as session:
        profile_rows = (
            await session.execute(
                select(User.username, UserProfile.account_id)
                .join(User, User.id == UserProfile.user_id)
                .where(permissions.profile_scope(principal))
            )
        ).all()
        contact_rows = (
            await session.execute(
                select(AccountContact.email, AccountContact.account_id).where(permissions.contact_scope(principal))
            )
        ).all()
    profiles = {f"{username}@{letters[account]}" for username, account in profile_rows}
    assert profiles == expand(PROFILES[actor], {"admin@platform", *PROFILES_A, *PROFILES_B}), actor
    contacts = {f"{email}@{letters[account]}" for email, account in contact_rows}
    assert contacts == expand(CONTACTS[actor], {"admin@smarter.sh@platform", *CONTACTS_A, *CONTACTS_B}), actor


async def _ids(scene: Scene, statement: Any) -> set[int]:
    async with scene.runtime.sessionmaker() as session:
        return set((await session.execute(statement)).scalars())


# (actor, plugin) -> what get_scoped answers when the action needs ownership
GET_SCOPED = [
    ("superuser", "p_regular_b", "ok"),
    ("staff_a", "p_regular_a", "ok"),
    ("staff_a", "p_multi_a", "ok"),
    ("staff_a", "p_platform", 403),
    ("staff_a", "p_multi_b", 404),
    ("regular_a", "p_regular_a", "ok"),
    ("regular_a", "p_staff_a", 403),
    ("regular_a", "p_multi_a", 403),
    ("regular_a", "p_platform", 403),
    ("regular_a", "p_staff_b", 404),
    ("staff_b", "p_multi_b", "ok"),
    ("staff_b", "p_multi_a", 404),
    ("multi", "p_multi_b", "ok"),
    ("multi", "p_staff_b", 403),
    ("multi", "p_platform", 403),
]


async def test_get_scoped_404_before_403(scene: Scene) -> None:
    for actor, plugin, expected in GET_SCOPED:
        assert await _get_scoped_outcome(scene, actor, plugin) == expected, (actor, plugin)


async def _get_scoped_outcome(scene: Scene, actor: str, plugin: str) -> Any:
    principal = scene.principals[actor]
    plugin_id = scene.plugins[plugin]
    statement = select(PluginMeta).where(PluginMeta.id == plugin_id, permissions.read_scope(principal, PluginMeta))
    owned: ColumnElement[bool] = permissions.ownership_scope(principal, PluginMeta)
    async with scene.runtime.sessionmaker() as session:
        with capture_statements(scene.runtime) as statements:
            try:
                row = await permissions.get_scoped(session, statement, write_scope=owned, not_found="No such plugin.")
            except NotFound:
                outcome: Any = 404
            except Forbidden:
                outcome = 403
            else:
                outcome = "ok"
                assert row.id == plugin_id
        # Readability and ownership come back together: one query whatever the answer.
        assert len(statements.matching(r"^select")) == 1
        # Without a write scope, everything readable is returned.
        if outcome != 404:
            assert (await permissions.get_scoped(session, statement, not_found="x")).id == plugin_id
    return outcome


async def test_get_scoped_missing_row_is_404(scene: Scene) -> None:
    for actor in ACTORS:
        principal = scene.principals[actor]
        statement = select(PluginMeta).where(PluginMeta.id == 10**9, permissions.read_scope(principal, PluginMeta))
        async with scene.runtime.sessionmaker() as session:
            with pytest.raises(NotFound):
                await permissions.get_scoped(
                    session, statement, write_scope=permissions.ownership_scope(principal, PluginMeta), not_found="x"
                )


async def _row_counts(runtime: Runtime) -> dict[str, int]:
    async with runtime.engine.connect() as conn:
        return {
            table.name: (await conn.execute(select(func.count()).select_from(table))).scalar_one()
            for table in Base.metadata.sorted_tables
        }


async def test_reads_never_create_rows(client: httpx.AsyncClient, scene: Scene) -> None:
    before = await _row_counts(scene.runtime)
    for actor in ACTORS:
        principal = scene.principals[actor]
        async with scene.runtime.sessionmaker() as session:
            for statement in (
                select(PluginMeta).where(permissions.read_scope(principal, PluginMeta)),
                select(ApiKey).where(permissions.ownership_scope(principal, ApiKey)),
                select(Account).where(permissions.account_scope(principal)),
                select(User).where(permissions.user_scope(principal)),
                select(UserProfile).where(permissions.profile_scope(principal)),
                select(AccountContact).where(permissions.contact_scope(principal)),
            ):
                (await session.execute(statement)).scalars().all()
        headers = scene.world[actor].headers
        for path in (PROBE, "/api/v1/cli/whoami/", "/api/v1/cli/version/"):
            response = await client.get(path, headers=headers)
            assert response.status_code == 200, (actor, path, response.text)
    after = await _row_counts(scene.runtime)
    assert after == before
    assert before["plugin_meta"] == len(PLUGIN_OWNERS)
