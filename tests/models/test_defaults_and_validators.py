"""Model defaults, attribute validators, UTC timestamps, immutable columns, tags and derived properties."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import inspect, select, update
from sqlalchemy.exc import InvalidRequestError, StatementError
from sqlalchemy.orm import load_only, selectinload

from app.models import (
    Account,
    AccountContact,
    ApiKey,
    ImmutableFieldError,
    PluginDataStatic,
    PluginMeta,
    PluginPrompt,
    PluginSelector,
    Tag,
    User,
    UserProfile,
)
from app.runtime import Runtime
from app.services import keys
from tests.models import account, api_key, insert, plugin, profile, seed
from tests.support import unit_of_work

# --- version and annotations -------------------------------------------------------------------------


async def test_version_defaults_to_1_0_0(runtime: Runtime) -> None:
    s = await seed(runtime)
    rows: list[Any] = [
        account("versioned", "3333-3333-3333"),
        plugin(s.staff_a, s.account_a),
        api_key(s.staff, s.staff_a, s.account_a),
    ]
    await insert(runtime, *rows)
    async with runtime.sessionmaker() as session:
        for row in rows:
            fresh = await session.get(type(row), row.id)
            assert fresh is not None
            assert fresh.version == "1.0.0"
            assert fresh.description == ""
            assert fresh.annotations == []
        stored = await session.get(UserProfile, s.staff_a)
        assert stored is not None
        assert stored.version == "1.0.0"


@pytest.mark.parametrize("model", [Account, UserProfile, PluginMeta, ApiKey])
@pytest.mark.parametrize("version", ["1.0.0\n", "01.0.0", "v1.0.0", "1.0", "", "latest"])
def test_version_is_validated_on_assignment(model: type[Any], version: str) -> None:
    row = model()
    with pytest.raises(ValueError, match="semantic version"):
        row.version = version
    with pytest.raises(ValueError, match="semantic version"):
        model(version=version)


@pytest.mark.parametrize("version", ["0.2.0", "1.0.0-alpha.1", "1.0.0+build.5", "10.20.30"])
def test_valid_versions_are_kept(version: str) -> None:
    row = PluginMeta(version=version)
    assert row.version == version
    row.version = "2.0.0"
    assert row.version == "2.0.0"


async def test_invalid_version_never_reaches_the_database(runtime: Runtime) -> None:
    s = await seed(runtime)
    row = plugin(s.staff_a, s.account_a)
    await insert(runtime, row)
    async with unit_of_work(runtime) as session:
        fresh = await session.get(PluginMeta, row.id)
        assert fresh is not None
        with pytest.raises(ValueError, match="semantic version"):
            fresh.version = "1.0"
        fresh.version = "1.2.3"
    async with runtime.sessionmaker() as session:
        assert (await session.scalar(select(PluginMeta.version).where(PluginMeta.id == row.id))) == "1.2.3"


@pytest.mark.parametrize(
    "annotations",
    [
        [{"a": 1, "b": 2}],
        [{}],
        [{"bad key": 1}],
        {"a": 1},
        ["a"],
        [{"k": "x" * 2049}],
    ],
)
def test_annotations_shape_is_validated(annotations: Any) -> None:
    with pytest.raises(ValueError, match=r"[Aa]nnotation"):
        PluginMeta(annotations=annotations)
    row = Account()
    with pytest.raises(ValueError, match=r"[Aa]nnotation"):
        row.annotations = annotations


async def test_annotations_round_trip(runtime: Runtime) -> None:
    s = await seed(runtime)
    annotations = [
        {"smarter.sh/plugin/author": "Your Name"},
        {"smarter.sh/plugin/count": 3},
        {"smarter.sh/plugin/nested": {"list": [1, "two", None], "flag": True}},
    ]
    row = plugin(s.staff_a, s.account_a)
    row.annotations = annotations
    assert PluginMeta(annotations=None).annotations == []
    await insert(runtime, row)
    async with runtime.sessionmaker() as session:
        assert (await session.scalar(select(PluginMeta.annotations).where(PluginMeta.id == row.id))) == annotations


def test_username_and_account_number_validators() -> None:
    assert User(username="jane.doe@example.com").username == "jane.doe@example.com"
    for bad in ("jane doe", "jane\n", "", "x" * 151, "h\u00e9llo"):
        with pytest.raises(ValueError, match="Usernames"):
            User(username=bad)
    assert Account(account_number="1234-5678-9012").account_number == "1234-5678-9012"
    for bad in ("1234-5678-9012\n", "123456789012", "\uff11234-5678-9012", "9999-9999-999"):
        with pytest.raises(ValueError, match="Account number"):
            Account(account_number=bad)


# --- defaults --------------------------------------------------------------------------------------


async def test_account_defaults(runtime: Runtime) -> None:
    await insert(runtime, Account(name="plain", company_name="Plain Inc.", account_number="3333-3333-3333"))
    async with runtime.sessionmaker() as session:
        row = (await session.execute(select(Account).where(Account.name == "plain"))).scalar_one()
    assert (row.country, row.language, row.currency) == ("USA", "EN", "USD")
    assert row.is_active is True
    assert row.is_default_account is False
    assert row.timezone is None
    assert row.phone_number is None
    assert row.is_platform is False


async def test_user_profile_and_contact_defaults(runtime: Runtime) -> None:
    s = await seed(runtime)
    await insert(
        runtime, AccountContact(account_id=s.account_a, email="jane@example.com", first_name="Jane", last_name="Doe")
    )
    async with runtime.sessionmaker() as session:
        stored_user = await session.get(User, s.regular)
        stored_profile = await session.get(UserProfile, s.regular_a)
        stored_contact = (await session.execute(select(AccountContact))).scalar_one()
    assert stored_user is not None
    assert (stored_user.is_active, stored_user.is_staff, stored_user.is_superuser) == (True, False, False)
    assert (stored_user.password, stored_user.first_name, stored_user.last_name) == ("", "", "")
    assert stored_user.last_login is None
    assert stored_user.date_joined.tzinfo is not None
    assert stored_profile is not None
    assert (stored_profile.is_test, stored_profile.profile_image_url) == (False, None)
    assert (stored_contact.is_primary, stored_contact.is_test, stored_contact.welcomed) == (False, False, False)
    assert stored_contact.phone is None


async def test_plugin_part_defaults(runtime: Runtime) -> None:
    s = await seed(runtime)
    row = plugin(s.staff_a, s.account_a)
    async with unit_of_work(runtime) as session:
        session.add(row)
        await session.flush()
        session.add_all(
            [PluginPrompt(plugin_id=row.id), PluginSelector(plugin_id=row.id), PluginDataStatic(plugin_id=row.id)]
        )
    async with runtime.sessionmaker() as session:
        prompt = (await session.execute(select(PluginPrompt))).scalar_one()
        selector = (await session.execute(select(PluginSelector))).scalar_one()
        data = (await session.execute(select(PluginDataStatic))).scalar_one()
    # The original's defaults, "helful" typo included.
    assert prompt.provider == "openai"
    assert prompt.system_role == "You are a helful assistant."
    assert prompt.model == "gpt-4o-mini"
    assert prompt.temperature == 0.5
    assert prompt.max_completion_tokens == 2048
    assert selector.directive == "search_terms"
    assert selector.search_terms == []
    assert (data.description, data.parameters, data.static_data) == ("", None, None)


async def test_api_key_defaults(runtime: Runtime) -> None:
    s = await seed(runtime)
    row = api_key(s.staff, s.staff_a, s.account_a)
    await insert(runtime, row)
    async with runtime.sessionmaker() as session:
        stored = await session.get(ApiKey, row.id)
    assert stored is not None
    assert stored.kind == "api_key"
    assert stored.is_active is True
    assert stored.expires_at is None
    assert stored.last_used_at is None
    assert stored.key_id is not None
    assert stored.key_id.version == 4


# --- timestamps ------------------------------------------------------------------------------------


def _assert_utc(value: datetime | None) -> None:
    assert value is not None
    assert value.tzinfo is not None
    assert value.utcoffset() == timedelta(0)


async def test_timestamps_are_aware_utc_on_read_back(runtime: Runtime) -> None:
    s = await seed(runtime)
    before = datetime.now(UTC)
    paris = timezone(timedelta(hours=2))
    expires = datetime(2030, 6, 1, 14, 30, 15, 123456, tzinfo=paris)
    row = api_key(s.staff, s.staff_a, s.account_a, expires_at=expires)
    await insert(runtime, row)
    after = datetime.now(UTC)
    async with runtime.sessionmaker() as session:
        stored = (await session.execute(select(ApiKey).where(ApiKey.id == row.id))).scalar_one()
        for model, id_ in ((Account, s.account_a), (User, s.staff), (UserProfile, s.staff_a)):
            other = await session.get(model, id_)
            assert other is not None
            _assert_utc(other.created_at)
            _assert_utc(other.updated_at)
    for value in (stored.created_at, stored.updated_at, stored.expires_at):
        _assert_utc(value)
    # The same instant, expressed in UTC, microseconds kept.
    assert stored.expires_at == expires
    assert stored.expires_at == datetime(2030, 6, 1, 12, 30, 15, 123456, tzinfo=UTC)
    assert before - timedelta(seconds=1) <= stored.created_at <= after + timedelta(seconds=1)
    assert stored.elapsed_updated is not None
    assert 0 <= stored.elapsed_updated <= 5


async def test_naive_datetimes_are_refused(runtime: Runtime) -> None:
    s = await seed(runtime)
    row = api_key(s.staff, s.staff_a, s.account_a, expires_at=datetime(2030, 1, 1))
    async with runtime.sessionmaker() as session:
        session.add(row)
        with pytest.raises(StatementError, match="Naive datetimes"):
            await session.flush()


async def test_aware_values_compare_in_sql(runtime: Runtime) -> None:
    """A stored instant filters correctly against an aware bound (SQLite compares the stored text)."""
    s = await seed(runtime)
    soon = datetime.now(UTC) + timedelta(hours=1)
    await insert(
        runtime,
        api_key(s.staff, s.staff_a, s.account_a, "soon", expires_at=soon),
        api_key(s.staff, s.staff_a, s.account_a, "later", expires_at=soon + timedelta(days=1)),
    )
    async with runtime.sessionmaker() as session:
        bound = (soon + timedelta(minutes=1)).astimezone(timezone(timedelta(hours=-5)))
        names = (await session.execute(select(ApiKey.name).where(ApiKey.expires_at <= bound))).scalars().all()
    assert names == ["soon"]


async def test_updated_at_bumps_on_update(runtime: Runtime) -> None:
    s = await seed(runtime)
    async with runtime.sessionmaker() as session:
        original = await session.get(Account, s.account_a)
        assert original is not None
        created, updated = original.created_at, original.updated_at
    await asyncio.sleep(0.01)
    async with unit_of_work(runtime) as session:
        row = await session.get(Account, s.account_a)
        assert row is not None
        row.company_name = "Renamed Inc."
    async with runtime.sessionmaker() as session:
        after_orm = await session.get(Account, s.account_a)
        assert after_orm is not None
    assert after_orm.created_at == created
    assert after_orm.updated_at > updated
    _assert_utc(after_orm.updated_at)

    await asyncio.sleep(0.01)
    # A Core UPDATE (what services use for targeted writes) bumps it too.
    async with unit_of_work(runtime) as session:
        await session.execute(update(Account).where(Account.id == s.account_a).values(city="Lisbon"))
    async with runtime.sessionmaker() as session:
        after_core = await session.get(Account, s.account_a)
        assert after_core is not None
    assert after_core.updated_at > after_orm.updated_at
    assert after_core.created_at == created


# --- immutable columns ----------------------------------------------------------------------------


async def test_account_number_is_immutable_once_persisted(runtime: Runtime) -> None:
    fresh = account("mutable", "3333-3333-3333")
    fresh.account_number = "4444-4444-4444"  # not persisted yet: still free to change
    await insert(runtime, fresh)
    async with unit_of_work(runtime) as session:
        row = await session.get(Account, fresh.id)
        assert row is not None
        row.account_number = "4444-4444-4444"  # the same value again is fine
        with pytest.raises(ImmutableFieldError) as info:
            row.account_number = "5555-5555-5555"
        assert info.value.field == "account_number"
        assert "immutable" in str(info.value)
        assert row.account_number == "4444-4444-4444"
    # Detached objects are guarded too.
    with pytest.raises(ImmutableFieldError):
        row.account_number = "5555-5555-5555"
    async with runtime.sessionmaker() as session:
        assert (await session.scalar(select(Account.account_number).where(Account.id == fresh.id))) == "4444-4444-4444"


@pytest.mark.parametrize("how", ["expired", "load_only", "rolled-back-savepoint"])
async def test_immutability_holds_when_the_value_is_not_loaded(runtime: Runtime, how: str) -> None:
    """An unloaded column's stored value is unknown, so a write to it is refused rather than trusted."""
    await insert(runtime, account("guarded", "3333-3333-3333"))
    async with runtime.sessionmaker() as session:
        if how == "load_only":
            statement = select(Account).where(Account.name == "guarded").options(load_only(Account.name))
            row = (await session.execute(statement)).scalar_one()
        else:
            row = (await session.execute(select(Account).where(Account.name == "guarded"))).scalar_one()
            if how == "expired":
                session.expire(row, ["account_number"])
            else:
                with contextlib.suppress(RuntimeError):
                    async with session.begin_nested():
                        row.company_name = "Changed Inc."
                        raise RuntimeError("roll the savepoint back")
                assert "account_number" not in inspect(row).dict
        with pytest.raises(ImmutableFieldError):
            row.account_number = "4444-4444-4444"
        await session.commit()
    async with runtime.sessionmaker() as session:
        stored = await session.scalar(select(Account.account_number).where(Account.name == "guarded"))
    assert stored == "3333-3333-3333"


@pytest.mark.parametrize("field", ["user_id", "account_id"])
async def test_profile_owner_is_immutable(runtime: Runtime, field: str) -> None:
    s = await seed(runtime)
    async with unit_of_work(runtime) as session:
        row = await session.get(UserProfile, s.regular_a)
        assert row is not None
        setattr(row, field, getattr(row, field))
        other = s.account_b if field == "account_id" else s.staff
        with pytest.raises(ImmutableFieldError) as info:
            setattr(row, field, other)
        assert info.value.field == field
    async with runtime.sessionmaker() as session:
        stored = await session.get(UserProfile, s.regular_a)
        assert stored is not None
        assert (stored.user_id, stored.account_id) == (s.regular, s.account_a)


@pytest.mark.parametrize("field", ["digest", "token_key", "user_id"])
async def test_key_secret_and_owner_are_immutable(runtime: Runtime, field: str) -> None:
    s = await seed(runtime)
    row = api_key(s.staff, s.staff_a, s.account_a)
    await insert(runtime, row)
    other_key = keys.generate_key()
    replacement = {"digest": keys.digest_of(other_key), "token_key": keys.token_key_of(other_key), "user_id": s.regular}
    async with unit_of_work(runtime) as session:
        stored = await session.get(ApiKey, row.id)
        assert stored is not None
        setattr(stored, field, getattr(stored, field))
        with pytest.raises(ImmutableFieldError):
            setattr(stored, field, replacement[field])
        # Other columns stay writable.
        stored.is_active = False
        stored.name = "renamed"
    async with runtime.sessionmaker() as session:
        again = await session.get(ApiKey, row.id)
        assert again is not None
        assert getattr(again, field) == getattr(row, field)
        assert (again.is_active, again.name) == (False, "renamed")


# --- tags ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [Account, UserProfile, PluginMeta, ApiKey])
async def test_tags_through_link_tables_and_has_tag(runtime: Runtime, model: type[Any]) -> None:
    s = await seed(runtime)
    builders = {
        Account: lambda name: account(name, f"{3000 + len(name)}-0000-0000"),
        UserProfile: lambda name: profile(s.regular, s.account_b, name),
        PluginMeta: lambda name: plugin(s.staff_a, s.account_a, name),
        ApiKey: lambda name: api_key(s.staff, s.staff_a, s.account_a, name),
    }
    async with unit_of_work(runtime) as session:
        red, green, blue = Tag(name="red"), Tag(name="green"), Tag(name="blue")
        session.add_all([red, green, blue])
        await session.flush()
        tagged = builders[model]("tagged")
        tagged.tag_links = [red, green]
        session.add(tagged)
        await session.flush()
        if model is not UserProfile:  # one profile per (user, account): only one new profile fits
            other = builders[model]("other_row")
            other.tag_links = [blue]
            session.add(other)
            await session.flush()
    async with runtime.sessionmaker() as session:
        row = (
            await session.execute(select(model).where(model.id == tagged.id).options(selectinload(model.tag_links)))
        ).scalar_one()
        # Ordered by name, as strings.
        assert row.tags == ["green", "red"]
        red_ids = (await session.execute(select(model.id).where(model.has_tag("red")))).scalars().all()
        assert red_ids == [tagged.id]
        assert (await session.execute(select(model.id).where(model.has_tag("purple")))).scalars().all() == []
        # Replacing the links (loaded first, as services do).
        row.tag_links = [await session.get_one(Tag, blue.id)]
        await session.commit()
    async with runtime.sessionmaker() as session:
        blue_ids = set((await session.execute(select(model.id).where(model.has_tag("blue")))).scalars().all())
        assert tagged.id in blue_ids
        assert (await session.execute(select(model.id).where(model.has_tag("red")))).scalars().all() == []


async def test_tag_links_are_not_lazy_loaded(runtime: Runtime) -> None:
    """`lazy="raise"`: a missed eager load fails loudly instead of issuing a hidden query."""
    s = await seed(runtime)
    async with runtime.sessionmaker() as session:
        row = await session.get(Account, s.account_a)
        assert row is not None
        with pytest.raises(InvalidRequestError, match="lazy"):
            _ = row.tags


# --- derived properties ----------------------------------------------------------------------------


async def test_api_key_identifier(runtime: Runtime) -> None:
    s = await seed(runtime)
    plaintext = "5f2b8c0d9e1a4b7c3d6e8f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c"
    row = api_key(s.staff, s.staff_a, s.account_a, plaintext=plaintext)
    await insert(runtime, row)
    async with runtime.sessionmaker() as session:
        stored = await session.get(ApiKey, row.id)
    assert stored is not None
    # The study's worked example: token -> token_key and SHA-512 digest.
    assert stored.token_key == "5f2b8c0d9e1a4b7"
    assert stored.digest == (
        "946f3e6ce67a96ba1585e04100f5a858c0998893367c4a580f71fd1ccad9142520b72085112b0a017fff277e6b7f1e8771b6"
        "8d9689da904d3f802a75dd809bdd"
    )
    assert stored.identifier == "****9bdd"
    assert plaintext not in stored.identifier
    assert stored.record_locator == f"smarterauthtoken-{stored.hashed_id}"


@pytest.mark.parametrize(("plugin_class", "kind"), [("static", "Plugin"), ("sql", "SqlPlugin"), ("api", "ApiPlugin")])
def test_plugin_kind(plugin_class: str, kind: str) -> None:
    assert PluginMeta(plugin_class=plugin_class).kind == kind


async def test_platform_account(runtime: Runtime) -> None:
    await insert(runtime, account("platform", "3141-5926-5359", is_default_account=True))
    async with runtime.sessionmaker() as session:
        stored = (await session.execute(select(Account).where(Account.name == "platform"))).scalar_one()
    assert stored.is_platform is True
    assert stored.record_locator == f"account-{stored.hashed_id}"
