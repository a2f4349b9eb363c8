"""The database enforces the rules (unique, partial unique, foreign keys, checks, cascades) on both backends,
and `classify_integrity_error` turns each unique violation into a 409 naming the field.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.db_errors import classify_integrity_error
from app.db_errors import constraint_of as _constraint_of
from app.errors import Conflict, Unprocessable
from app.models import (
    KIND_LOGIN,
    Account,
    AccountContact,
    ApiKey,
    PluginDataStatic,
    PluginMeta,
    PluginPrompt,
    PluginSelector,
    Tag,
    User,
    UserProfile,
)
from app.models.tag import TaggableMixin
from app.runtime import Runtime
from tests.models import (
    Seed,
    account,
    api_key,
    contact,
    insert,
    plugin,
    profile,
    rejected,
    seed,
    user,
)
from tests.support import unit_of_work

Rows = Callable[[Seed], list[Any]]


KEY_ID = uuid.UUID("12345678-1234-5678-1234-567812345678")

# (case id, rows committed first, rows that must then violate, constraint, field named by the 409)
UNIQUE_CASES: list[tuple[str, Rows, Rows, str, str]] = [
    (
        "account.name",
        lambda s: [],
        lambda s: [account("acct_a", "3333-3333-3333")],
        "uq_account_name",
        "name",
    ),
    (
        "account.account_number",
        lambda s: [],
        lambda s: [account("acct_c", "1111-1111-1111")],
        "uq_account_account_number",
        "accountNumber",
    ),
    (
        "account.single_default",
        lambda s: [account("default_one", "3333-3333-3333", is_default_account=True)],
        lambda s: [account("default_two", "4444-4444-4444", is_default_account=True)],
        "uq_account_single_default",
        "isDefaultAccount",
    ),
    (
        "account_contact.account_email",
        lambda s: [contact(s.account_a, "jane@example.com")],
        lambda s: [contact(s.account_a, "jane@example.com")],
        "uq_account_contact_account_id_email",
        "email",
    ),
    (
        "account_contact.single_primary",
        lambda s: [contact(s.account_a, "first@example.com", is_primary=True)],
        lambda s: [contact(s.account_a, "second@example.com", is_primary=True)],
        "uq_account_contact_single_primary",
        "isPrimary",
    ),
    (
        "app_user.username",
        lambda s: [],
        lambda s: [user("staff")],
        "uq_app_user_username",
        "username",
    ),
    (
        "user_profile.user_account",
        lambda s: [],
        lambda s: [profile(s.regular, s.account_a, "again")],
        "uq_user_profile_user_id_account_id",
        "username",
    ),
    (
        "plugin_meta.account_name",
        lambda s: [plugin(s.staff_a, s.account_a, "weather")],
        # Another member of the same account: the name is unique per account, not per owner.
        lambda s: [plugin(s.regular_a, s.account_a, "weather")],
        "uq_plugin_meta_account_id_name",
        "name",
    ),
    (
        "api_key.digest",
        lambda s: [api_key(s.staff, s.staff_a, s.account_a, "first", plaintext="a" * 64)],
        lambda s: [api_key(s.staff, s.staff_b, s.account_b, "second", plaintext="a" * 64)],
        "uq_api_key_digest",
        "digest",
    ),
    (
        "api_key.key_id",
        lambda s: [api_key(s.staff, s.staff_a, s.account_a, "first", key_id=KEY_ID)],
        lambda s: [api_key(s.staff, s.staff_a, s.account_a, "second", key_id=KEY_ID)],
        "uq_api_key_key_id",
        "keyId",
    ),
    (
        "api_key.profile_name",
        lambda s: [api_key(s.staff, s.staff_a, s.account_a, "deploy")],
        lambda s: [api_key(s.staff, s.staff_a, s.account_a, "deploy")],
        "uq_api_key_user_profile_id_name",
        "name",
    ),
    (
        "tag.name",
        lambda s: [Tag(name="red")],
        lambda s: [Tag(name="red")],
        "uq_tag_name",
        "name",
    ),
]


@pytest.mark.parametrize(
    ("first", "second", "constraint", "field"),
    [pytest.param(*case[1:], id=case[0]) for case in UNIQUE_CASES],
)
async def test_unique_constraints(runtime: Runtime, first: Rows, second: Rows, constraint: str, field: str) -> None:
    s = await seed(runtime)
    await insert(runtime, *first(s))
    exc = await rejected(runtime, *second(s))
    # Both drivers name the same constraint (SQLite lists columns; they are mapped back to the name).
    assert _constraint_of(exc) == ("unique", constraint)
    error = classify_integrity_error(exc)
    assert isinstance(error, Conflict)
    assert error.status == 409
    assert error.errors is not None
    assert [e.loc for e in error.errors] == [["body", field]]
    assert error.errors[0].type == "unique"
    # The sentence is for humans and names no value.
    assert error.detail.endswith(".")


@pytest.mark.parametrize("part", [PluginPrompt, PluginSelector, PluginDataStatic])
async def test_one_part_of_each_kind_per_plugin(
    runtime: Runtime, part: type[PluginPrompt | PluginSelector | PluginDataStatic]
) -> None:
    s = await seed(runtime)
    row = plugin(s.staff_a, s.account_a)
    async with unit_of_work(runtime) as session:
        session.add(row)
        await session.flush()
        session.add(part(plugin_id=row.id))
    exc = await rejected(runtime, part(plugin_id=row.id))
    error = classify_integrity_error(exc)
    assert error.status == 409
    assert error.errors is not None
    assert error.errors[0].loc == ["body", "pluginId"]


# --- what the unique rules allow -------------------------------------------------------------------


async def count(runtime: Runtime, model: type[Any], *where: Any) -> int:
    async with runtime.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_many_non_default_accounts_and_one_default(runtime: Runtime) -> None:
    await insert(
        runtime,
        account("plain_one", "3333-3333-3333"),
        account("plain_two", "4444-4444-4444"),
        account("the_default", "5555-5555-5555", is_default_account=True),
    )
    assert await count(runtime, Account, Account.is_default_account.is_(False)) == 2
    assert await count(runtime, Account, Account.is_default_account.is_(True)) == 1


async def test_default_can_move_between_accounts(runtime: Runtime) -> None:
    await insert(runtime, account("old", "3333-3333-3333", is_default_account=True), account("new", "4444-4444-4444"))
    async with unit_of_work(runtime) as session:
        await session.execute(update(Account).where(Account.name == "old").values(is_default_account=False))
        await session.execute(update(Account).where(Account.name == "new").values(is_default_account=True))
    async with runtime.sessionmaker() as session:
        defaults = (await session.execute(select(Account.name).where(Account.is_default_account))).scalars().all()
    assert defaults == ["new"]


async def test_update_into_a_second_default_is_rejected(runtime: Runtime) -> None:
    await insert(runtime, account("one", "3333-3333-3333", is_default_account=True), account("two", "4444-4444-4444"))
    async with runtime.sessionmaker() as session:
        with pytest.raises(IntegrityError) as info:
            await session.execute(update(Account).where(Account.name == "two").values(is_default_account=True))
    assert classify_integrity_error(info.value).errors[0].loc == ["body", "isDefaultAccount"]  # type: ignore[index]


async def test_contacts_and_primaries_per_account(runtime: Runtime) -> None:
    s = await seed(runtime)
    await insert(
        runtime,
        contact(s.account_a, "jane@example.com", is_primary=True),
        contact(s.account_a, "joe@example.com"),
        contact(s.account_a, "jim@example.com"),
        # The same email and another primary, in another account.
        contact(s.account_b, "jane@example.com", is_primary=True),
    )
    assert await count(runtime, AccountContact) == 4
    assert await count(runtime, AccountContact, AccountContact.is_primary) == 2


async def test_same_names_in_other_scopes(runtime: Runtime) -> None:
    s = await seed(runtime)
    await insert(
        runtime,
        plugin(s.staff_a, s.account_a, "weather"),
        plugin(s.staff_b, s.account_b, "weather"),  # same name, other account
        api_key(s.staff, s.staff_a, s.account_a, "deploy"),
        api_key(s.staff, s.staff_b, s.account_b, "deploy"),  # same key name, other owner profile
        profile(s.regular, s.account_b, "regular"),  # a second membership, other account
    )
    assert await count(runtime, PluginMeta, PluginMeta.name == "weather") == 2
    assert await count(runtime, ApiKey, ApiKey.name == "deploy") == 2
    assert await count(runtime, UserProfile, UserProfile.user_id == s.regular) == 2


async def test_concurrent_second_default_loses(runtime: Runtime) -> None:
    """Two transactions insert a default account at once: the index decides, one commit fails.

    On SQLite the second writer waits for its turn (the write lock) rather than for the index entry.
    """
    async with runtime.writer_sessionmaker() as first, runtime.writer_sessionmaker() as second:
        first.add(account("first", "3333-3333-3333", is_default_account=True))
        await first.flush()
        second.add(account("second", "4444-4444-4444", is_default_account=True))
        blocked = asyncio.create_task(second.flush())
        await asyncio.sleep(0.2)
        assert not blocked.done()  # waits on the first transaction's index entry
        await first.commit()
        with pytest.raises(IntegrityError):
            await blocked
        await second.rollback()
    assert await count(runtime, Account, Account.is_default_account) == 1


# --- foreign keys ----------------------------------------------------------------------------------


async def test_every_sqlite_connection_enforces_foreign_keys(runtime: Runtime) -> None:
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("SQLite connection pragmas")
    async with runtime.engine.connect() as first, runtime.engine.connect() as second:
        for conn in (first, second):
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"


async def test_orphan_profile_is_rejected(runtime: Runtime) -> None:
    s = await seed(runtime)
    exc = await rejected(runtime, profile(999_999, s.account_a))
    assert isinstance(classify_integrity_error(exc), Unprocessable)
    exc = await rejected(runtime, profile(s.regular, 999_999))
    assert classify_integrity_error(exc).status == 422


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda s: plugin(s.staff_a, s.account_b), id="plugin"),
        pytest.param(lambda s: api_key(s.staff, s.staff_a, s.account_b), id="api_key"),
        pytest.param(lambda s: plugin(999_999, s.account_a), id="plugin-missing-profile"),
        pytest.param(lambda s: PluginPrompt(plugin_id=999_999), id="prompt-missing-plugin"),
        pytest.param(lambda s: contact(999_999, "x@example.com"), id="contact-missing-account"),
        pytest.param(lambda s: api_key(999_999, None, None, kind=KIND_LOGIN), id="key-missing-user"),
    ],
)
async def test_foreign_keys(runtime: Runtime, build: Callable[[Seed], Any]) -> None:
    """The owner's account is copied next to the profile id; the composite key keeps the copy honest."""
    s = await seed(runtime)
    exc = await rejected(runtime, build(s))
    error = classify_integrity_error(exc)
    assert isinstance(error, Unprocessable)
    assert error.status == 422


async def test_composite_key_blocks_moving_a_plugin_to_another_account(runtime: Runtime) -> None:
    s = await seed(runtime)
    row = plugin(s.staff_a, s.account_a)
    await insert(runtime, row)
    async with runtime.sessionmaker() as session:
        with pytest.raises(IntegrityError):
            await session.execute(update(PluginMeta).where(PluginMeta.id == row.id).values(account_id=s.account_b))
    # Moving it with its owner's matching profile in B is fine.
    async with unit_of_work(runtime) as session:
        await session.execute(
            update(PluginMeta).where(PluginMeta.id == row.id).values(account_id=s.account_b, user_profile_id=s.staff_b)
        )
    assert await count(runtime, PluginMeta, PluginMeta.account_id == s.account_b) == 1


async def test_login_token_needs_no_profile(runtime: Runtime) -> None:
    s = await seed(runtime)
    await insert(runtime, api_key(s.regular, None, None, "login_x", kind=KIND_LOGIN))
    assert await count(runtime, ApiKey, ApiKey.kind == KIND_LOGIN) == 1


# --- check constraints -----------------------------------------------------------------------------


async def _plugin_id(runtime: Runtime, s: Seed) -> int:
    row = plugin(s.staff_a, s.account_a, "checked")
    await insert(runtime, row)
    return row.id


@pytest.mark.parametrize(
    ("build", "constraint"),
    [
        pytest.param(lambda s, p: plugin(s.staff_a, s.account_a, "bad", "PluginMeta"), "plugin_class", id="class"),
        pytest.param(lambda s, p: plugin(s.staff_a, s.account_a, "bad", ""), "plugin_class", id="class-empty"),
        pytest.param(lambda s, p: PluginPrompt(plugin_id=p, temperature=-0.01), "temperature", id="temp-low"),
        pytest.param(lambda s, p: PluginPrompt(plugin_id=p, temperature=1.01), "temperature", id="temp-high"),
        pytest.param(lambda s, p: PluginPrompt(plugin_id=p, max_completion_tokens=0), "max_completion", id="tok-0"),
        pytest.param(lambda s, p: PluginPrompt(plugin_id=p, max_completion_tokens=8193), "max_completion", id="tok"),
        pytest.param(lambda s, p: PluginPrompt(plugin_id=p, system_role="x" * 32769), "system_role", id="role"),
        pytest.param(lambda s, p: PluginSelector(plugin_id=p, directive="sometimes"), "directive", id="directive"),
        pytest.param(lambda s, p: api_key(s.staff, s.staff_a, s.account_a, kind="other"), "kind", id="key-kind"),
        pytest.param(lambda s, p: api_key(s.staff, None, None), "api_key_owner", id="key-without-owner"),
    ],
)
async def test_check_constraints(runtime: Runtime, build: Callable[[Seed, int], Any], constraint: str) -> None:
    s = await seed(runtime)
    plugin_id = await _plugin_id(runtime, s)
    exc = await rejected(runtime, build(s, plugin_id))
    error = classify_integrity_error(exc)
    assert isinstance(error, Unprocessable)
    assert constraint in error.detail


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda p: PluginPrompt(plugin_id=p, temperature=0.0, max_completion_tokens=1), id="low"),
        pytest.param(lambda p: PluginPrompt(plugin_id=p, temperature=1.0, max_completion_tokens=8192), id="high"),
        pytest.param(lambda p: PluginPrompt(plugin_id=p, system_role="x" * 32768), id="role"),
        pytest.param(lambda p: PluginSelector(plugin_id=p, directive="always"), id="always"),
        pytest.param(lambda p: PluginSelector(plugin_id=p, directive="llm"), id="llm"),
    ],
)
async def test_check_constraint_boundaries_pass(runtime: Runtime, build: Callable[[int], Any]) -> None:
    s = await seed(runtime)
    plugin_id = await _plugin_id(runtime, s)
    row = build(plugin_id)
    await insert(runtime, row)
    assert row.id is not None


@pytest.mark.parametrize("plugin_class", ["static", "sql", "api"])
async def test_plugin_classes(runtime: Runtime, plugin_class: str) -> None:
    s = await seed(runtime)
    await insert(runtime, plugin(s.staff_a, s.account_a, f"p_{plugin_class}", plugin_class))
    assert await count(runtime, PluginMeta, PluginMeta.plugin_class == plugin_class) == 1


# --- cascades --------------------------------------------------------------------------------------


async def _graph(runtime: Runtime, s: Seed) -> None:
    """Everything an account owns, in A and (as a control) in B, with tags on every taggable row."""
    async with unit_of_work(runtime) as session:
        red, blue = Tag(name="red"), Tag(name="blue")
        session.add_all([red, blue])
        await session.flush()
        rows: list[Any] = []
        for account_id, owner in ((s.account_a, s.staff_a), (s.account_b, s.staff_b)):
            row = plugin(owner, account_id, "weather")
            key = api_key(s.staff, owner, account_id, "deploy")
            for tagged in (row, key):
                tagged.tag_links = [red, blue]
            session.add_all([row, key, contact(account_id, "jane@example.com", is_primary=True)])
            await session.flush()
            rows += [
                PluginPrompt(plugin_id=row.id),
                PluginSelector(plugin_id=row.id),
                PluginDataStatic(plugin_id=row.id),
            ]
        session.add_all(rows)
        # Login tokens: one owned by a profile in A, one with no profile at all.
        session.add(api_key(s.regular, s.regular_a, s.account_a, "login_a", kind=KIND_LOGIN))
        session.add(api_key(s.regular, None, None, "login_none", kind=KIND_LOGIN))
        await session.flush()
        for model, object_id in ((Account, s.account_a), (Account, s.account_b), (UserProfile, s.staff_a)):
            tagged_row = await session.get(model, object_id, options=[_tags(model)])
            assert tagged_row is not None
            tagged_row.tag_links = [red]


def _tags(model: type[Any]) -> Any:
    return selectinload(model.tag_links)


async def _link_count(session: AsyncSession, table: str) -> int:
    return int((await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def _delete_account(runtime: Runtime, account_id: int, how: str) -> None:
    async with unit_of_work(runtime) as session:
        if how == "core":
            await session.execute(delete(Account).where(Account.id == account_id))
        else:
            row = await session.get(Account, account_id)
            assert row is not None
            await session.delete(row)


@pytest.mark.parametrize("how", ["core", "orm"])
async def test_deleting_an_account_cascades(runtime: Runtime, how: str) -> None:
    s = await seed(runtime)
    await _graph(runtime, s)
    async with runtime.sessionmaker() as session:
        before = {t: await _link_count(session, t) for t in ("account_tag", "plugin_meta_tag", "api_key_tag")}
    assert before == {"account_tag": 2, "plugin_meta_tag": 4, "api_key_tag": 4}

    await _delete_account(runtime, s.account_a, how)

    a = s.account_a
    assert await count(runtime, Account, Account.id == a) == 0
    assert await count(runtime, UserProfile, UserProfile.account_id == a) == 0
    assert await count(runtime, PluginMeta, PluginMeta.account_id == a) == 0
    assert await count(runtime, ApiKey, ApiKey.account_id == a) == 0
    assert await count(runtime, AccountContact, AccountContact.account_id == a) == 0
    # The plugin parts and every tag link of the deleted rows went with them.
    for part in (PluginPrompt, PluginSelector, PluginDataStatic):
        assert await count(runtime, part) == 1
    async with runtime.sessionmaker() as session:
        after = {t: await _link_count(session, t) for t in ("account_tag", "plugin_meta_tag", "api_key_tag")}
        assert await _link_count(session, "user_profile_tag") == 0
    assert after == {"account_tag": 1, "plugin_meta_tag": 2, "api_key_tag": 2}
    # B is untouched; users, shared tags and the profile-less login token stay.
    assert await count(runtime, UserProfile, UserProfile.account_id == s.account_b) == 1
    assert await count(runtime, PluginMeta, PluginMeta.account_id == s.account_b) == 1
    assert await count(runtime, ApiKey, ApiKey.account_id == s.account_b) == 1
    assert await count(runtime, AccountContact, AccountContact.account_id == s.account_b) == 1
    assert await count(runtime, User) == 2
    assert await count(runtime, Tag) == 2
    assert await count(runtime, ApiKey, ApiKey.name == "login_none") == 1
    assert await count(runtime, ApiKey, ApiKey.name == "login_a") == 0


async def test_deleting_a_user_cascades_to_profiles_plugins_and_keys(runtime: Runtime) -> None:
    s = await seed(runtime)
    await _graph(runtime, s)
    async with unit_of_work(runtime) as session:
        await session.execute(delete(User).where(User.id == s.staff))
    assert await count(runtime, UserProfile, UserProfile.user_id == s.staff) == 0
    assert await count(runtime, PluginMeta) == 0
    assert await count(runtime, ApiKey, ApiKey.user_id == s.staff) == 0
    assert await count(runtime, PluginPrompt) == 0
    # Accounts and their contacts are not the user's.
    assert await count(runtime, Account) == 2
    assert await count(runtime, AccountContact) == 2
    assert await count(runtime, UserProfile, UserProfile.user_id == s.regular) == 1


async def test_deleting_a_plugin_deletes_its_parts_and_links(runtime: Runtime) -> None:
    s = await seed(runtime)
    await _graph(runtime, s)
    async with unit_of_work(runtime) as session:
        await session.execute(delete(PluginMeta).where(PluginMeta.account_id == s.account_a))
    for part in (PluginPrompt, PluginSelector, PluginDataStatic):
        assert await count(runtime, part) == 1
    async with runtime.sessionmaker() as session:
        assert await _link_count(session, "plugin_meta_tag") == 2
    assert await count(runtime, Tag) == 2


async def test_deleting_a_tag_unlinks_it_everywhere(runtime: Runtime) -> None:
    s = await seed(runtime)
    await _graph(runtime, s)
    async with unit_of_work(runtime) as session:
        await session.execute(delete(Tag).where(Tag.name == "red"))
    async with runtime.sessionmaker() as session:
        assert await _link_count(session, "account_tag") == 0
        assert await _link_count(session, "plugin_meta_tag") == 2
        assert await _link_count(session, "user_profile_tag") == 0
    assert issubclass(PluginMeta, TaggableMixin)
