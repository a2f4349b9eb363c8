"""Smarter's public identifiers (study §2.1-2.3): hashed ids, record locators, path ids, account numbers."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import pytest

from app import identifiers
from app.identifiers import (
    elapsed_updated,
    hashed_id,
    id_from_hashed_id,
    is_account_number,
    parse_path_id,
    random_account_number,
    record_locator,
)
from app.models import Account, AccountContact, ApiKey, PluginMeta, User, UserProfile

# A well-formed hashed id of a 5000-digit number (more digits than Python converts by default).
HUGE_HASHED_ID = "r" + base64.urlsafe_b64encode(b"9" * 5000).decode().rstrip("=") + "x"

# The study's worked examples (verified against the original's algorithm).
HASHED_IDS = [
    (0, "rMTAwMDAwMAx"),
    (1, "rMTAwMDAwMQx"),
    (2, "rMTAwMDAwMgx"),
    (10, "rMTAwMDAxMAx"),
    (123, "rMTAwMDEyMwx"),
    (999999, "rMTk5OTk5OQx"),
    (1000000, "rMjAwMDAwMAx"),
    (8999999, "rOTk5OTk5OQx"),
    (9000000, "rMTAwMDAwMDAx"),
]


@pytest.mark.parametrize(("id_", "expected"), HASHED_IDS)
def test_hashed_id_matches_the_original(id_: int, expected: str) -> None:
    assert hashed_id(id_) == expected


def test_hashed_id_lengths_grow_at_nine_million() -> None:
    assert len(hashed_id(8999999)) == 12
    assert len(hashed_id(9000000)) == 13


@pytest.mark.parametrize(("id_", "hashed"), [pair for pair in HASHED_IDS if pair[0] >= 1])
def test_id_from_hashed_id_round_trips(id_: int, hashed: str) -> None:
    assert id_from_hashed_id(hashed) == id_


@pytest.mark.parametrize("id_", [1, 7, 99, 12345, 2**31, 2**40, 2**63 - 1])
def test_round_trip_over_the_id_range(id_: int) -> None:
    assert id_from_hashed_id(hashed_id(id_)) == id_
    assert parse_path_id(hashed_id(id_)) == id_


@pytest.mark.parametrize(
    "value",
    [
        # The original's unanchored `find_hash` misread all three of these (study §2.1).
        "prefix rMTAwMDAwMQx suffix",
        "userprofile-rMTAwMDAwMQx",
        "rMTAwMDAwMQx-rMTAwMDAwMgx",
        # The original re-padded and accepted a padded middle.
        "rMTAwMDAwMQ==x",
        "rMTAwMDAwMQ=x",
        # Decodes to -1,000,000 (the original returned it).
        "rMHx",
        # Id 0 and anything below 1.
        "rMTAwMDAwMAx",
        hashed_id(-1),
        hashed_id(-1_000_000),
        # Not a hashed id at all.
        "",
        "r",
        "x",
        "rx",
        "garbage",
        "MTAwMDAwMQ",
        "RMTAwMDAwMQx",
        "rMTAwMDAwMQX",
        "rMTAwMDAwMQ",
        "MTAwMDAwMQx",
        # Whitespace around it.
        " rMTAwMDAwMQx",
        "rMTAwMDAwMQx ",
        "rMTAwMDAwMQx\n",
        # Valid base64 of something that is not a decimal number ("hello", "1e6", "+1000001", " 1000001").
        "raGVsbG8x",
        "rMWU2x",
        "rKzEwMDAwMDEx",
        "rIDEwMDAwMDEx",
        # Base64 alphabet, but a length no base64 string can have.
        "rMTAwMDAwMQxx",
        "rAx",
        # Non-canonical encodings of 1000001 (trailing bits set): same number, different string.
        "rMTAwMDAwMRx",
        # Unicode look-alikes: full-width M, Cyrillic a, an accented letter.
        "r\uff2dTAwMDAwMQx",
        "rMT\u0430wMDAwMQx",
        "rMTAwMDAwMQé",
        "\u0440MTAwMDAwMQx",
    ],
)
def test_id_from_hashed_id_rejects(value: str) -> None:
    assert id_from_hashed_id(value) is None


def test_hashed_id_is_a_full_match_never_a_search() -> None:
    embedded = f"see {hashed_id(5)} here"
    assert id_from_hashed_id(embedded) is None
    assert id_from_hashed_id(hashed_id(5)) == 5


@pytest.mark.parametrize(
    ("class_name", "id_", "expected"),
    [
        ("PluginMeta", 123, "pluginmeta-rMTAwMDEyMwx"),
        ("UserProfile", 999999, "userprofile-rMTk5OTk5OQx"),
        ("Account", 1, "account-rMTAwMDAwMQx"),
        ("SmarterAuthToken", 2, "smarterauthtoken-rMTAwMDAwMgx"),
    ],
)
def test_record_locator(class_name: str, id_: int, expected: str) -> None:
    assert record_locator(class_name, id_) == expected


@pytest.mark.parametrize(
    ("model", "prefix"),
    [
        (Account, "account"),
        (AccountContact, "accountcontact"),
        (User, "user"),
        (UserProfile, "userprofile"),
        (PluginMeta, "pluginmeta"),
        # The API key keeps the original's SAM kind name in its locator (contract, "Identifiers").
        (ApiKey, "smarterauthtoken"),
    ],
)
def test_model_identifiers(model: type[Account], prefix: str) -> None:
    row = model(id=123)
    assert row.hashed_id == "rMTAwMDEyMwx"
    assert row.record_locator == f"{prefix}-rMTAwMDEyMwx"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", 1),
        ("42", 42),
        ("123", 123),
        (str(2**63 - 1), 2**63 - 1),
        ("rMTAwMDAwMQx", 1),
        ("rMTAwMDEyMwx", 123),
        ("rMTk5OTk5OQx", 999999),
        ("rMTAwMDAwMDAx", 9000000),
    ],
)
def test_parse_path_id_accepts(value: str, expected: int) -> None:
    assert parse_path_id(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "0",
        "-1",
        "-0",
        "+1",
        "1.0",
        "1e3",
        "0x10",
        "1_000",
        "",
        " ",
        " 1",
        "1 ",
        "\t1",
        "1\n",
        "\uff11",  # full-width 1
        "\u0661",  # Arabic-Indic 1
        "abc",
        "rMTAwMDAwMAx",  # id 0
        "rMHx",  # negative
        "userprofile-rMTAwMDAwMQx",
        # Too large for a 64-bit id column: must be "cannot exist", not a driver overflow.
        str(2**63),
        str(2**64),
        "9" * 30,
        # Beyond Python's int-from-string digit limit: must not raise.
        pytest.param("9" * 5000, id="5000-digits"),
        pytest.param("1" + "0" * 10_000, id="10001-digits"),
        pytest.param("0" * 5000 + "1", id="zero-padded-1"),
        hashed_id(2**63),
        hashed_id(10**30),
        pytest.param(HUGE_HASHED_ID, id="hashed-5000-digits"),
    ],
)
def test_parse_path_id_rejects(value: str) -> None:
    assert parse_path_id(value) is None


def test_id_from_hashed_id_survives_enormous_numbers() -> None:
    assert id_from_hashed_id(HUGE_HASHED_ID) is None


@pytest.mark.parametrize("value", ["1234-5678-9012", "3141-5926-5359", "0000-0000-0000", "9999-9999-9999"])
def test_account_number_accepts(value: str) -> None:
    assert is_account_number(value)


@pytest.mark.parametrize(
    "value",
    [
        "1234-5678-9012\n",  # the original's `$` accepted a trailing newline
        "\uff11\uff12\uff13\uff14-5678-9012",  # and Unicode (full-width) digits through `\d`
        "\u0661\u0662\u0663\u0664-5678-9012",
        "123456789012",
        "1234-5678-901",
        "1234-5678-90123",
        "1234_5678_9012",
        " 1234-5678-9012",
        "abcd-efgh-ijkl",
        "",
    ],
)
def test_account_number_rejects(value: str) -> None:
    assert not is_account_number(value)


def test_random_account_numbers_are_valid_and_vary() -> None:
    numbers = {random_account_number() for _ in range(200)}
    assert all(is_account_number(n) for n in numbers)
    assert len(numbers) > 190
    assert identifiers.PLATFORM_ACCOUNT_NUMBER == "3141-5926-5359"


NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def test_elapsed_updated_aware() -> None:
    assert elapsed_updated(NOW - timedelta(seconds=90, milliseconds=700), NOW) == 90
    # A value in the future counts too (the original's abs()).
    assert elapsed_updated(NOW + timedelta(seconds=5), NOW) == 5
    # Another offset is the same instant.
    plus_two = timezone(timedelta(hours=2))
    assert elapsed_updated(datetime(2026, 1, 1, 14, 0, 0, tzinfo=plus_two), NOW) == 0


def test_elapsed_updated_takes_naive_values_as_utc() -> None:
    assert elapsed_updated(datetime(2026, 1, 1, 11, 59, 0), NOW) == 60


def test_elapsed_updated_none_and_default_now() -> None:
    assert elapsed_updated(None) is None
    assert elapsed_updated(None, NOW) is None
    recent = elapsed_updated(datetime.now(UTC) - timedelta(seconds=3))
    assert recent is not None
    assert 3 <= recent <= 5
