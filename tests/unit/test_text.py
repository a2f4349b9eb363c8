"""Text rules (study §2.4-2.8, §7 items 1-15): validators, case conversions, names, RFC 1034, masking.

Validator tables list the inputs the original wrongly accepted (or rejected) next to the plain cases.
"""

from __future__ import annotations

from typing import Any

import pytest

from app import text
from app.text import (
    convert_keys,
    is_camel_case,
    is_email,
    is_semver,
    is_snake_case,
    is_username,
    mask_string,
    normalise_name,
    rfc1034_compliant,
    rfc1034_to_snake,
    to_camel_case,
    to_snake_case,
    validate_annotations,
    validate_tags,
)

TOKEN = "5f2b8c0d9e1a4b7c3d6e8f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c"

# --- validators ---------------------------------------------------------------------------------------

SEMVER = [
    ("1.0.0", True),
    ("0.2.0", True),
    ("0.0.0", True),
    ("10.20.30", True),
    ("1.0.0-alpha", True),
    ("1.0.0-alpha.1", True),
    ("1.0.0-0.3.7", True),
    ("1.0.0-x.7.z.92", True),
    ("1.0.0+build.5", True),
    ("1.0.0-beta+exp.sha.5114f85", True),
    ("1.0.0\n", False),  # the original's `$` accepted a trailing newline
    ("01.0.0", False),
    ("1.01.0", False),
    ("1.0.01", False),
    ("v1.0.0", False),
    ("1.0", False),
    ("1", False),
    ("", False),
    (" 1.0.0", False),
    ("1.0.0 ", False),
    ("1.0.0-", False),
    ("1.0.0+", False),
    ("1.0.0-01", False),
    ("1.0.0-alpha..1", False),
    ("\uff11.0.0", False),  # full-width digit
    ("1.0.0-\u00e9", False),
]


@pytest.mark.parametrize(("value", "valid"), SEMVER)
def test_semver(value: str, valid: bool) -> None:
    assert is_semver(value) is valid


SNAKE = [
    ("snake_case", True),
    ("test_plugin", True),
    ("1abc", True),
    ("a", True),
    ("a1_b2", True),
    ("snake_case\n", False),  # the original accepted it
    ("SnakeCase", False),
    ("snake-case", False),
    ("a__b", False),
    ("_a", False),
    ("abc_", False),
    ("snake case", False),
    ("h\u00e9llo", False),
    ("", False),
]


@pytest.mark.parametrize(("value", "valid"), SNAKE)
def test_snake_case(value: str, valid: bool) -> None:
    assert is_snake_case(value) is valid


CAMEL = [
    ("camelCase", True),
    ("lowercase", True),
    ("aBC", True),
    ("apiKey2", True),  # the original rejected digits...
    ("abc123", True),
    ("a", True),  # ...and one-letter names
    ("x1Y2", True),
    ("CamelCase", False),
    ("camel_case", False),
    ("camel-case", False),
    ("1camel", False),
    ("camelCase\n", False),
    ("caf\u00e9", False),
    ("", False),
]


@pytest.mark.parametrize(("value", "valid"), CAMEL)
def test_camel_case(value: str, valid: bool) -> None:
    assert is_camel_case(value) is valid


USERNAMES = [
    ("admin", True),
    ("jane.doe", True),
    ("jane.doe@example.com", True),
    ("a+b-c_d", True),
    ("A", True),
    ("x" * 150, True),
    ("x" * 151, False),
    ("", False),
    ("jane doe", False),
    ("jane\n", False),
    ("jane/doe", False),
    ("h\u00e9llo", False),
    ("\uff41dmin", False),  # full-width a
]


@pytest.mark.parametrize(("value", "valid"), USERNAMES)
def test_username(value: str, valid: bool) -> None:
    assert is_username(value) is valid


EMAILS = [
    ("jane@example.com", True),
    ("jane.doe+tag@mail.example.co.uk", True),
    ("a@b.c", True),
    ("j\u00f6e@ex\u00e4mple.com", True),  # internationalised addresses are allowed
    ("x" * 64 + "@example.com", True),
    ("x" * 65 + "@example.com", False),
    ("a@" + "b" * 250 + ".com", False),  # over 254 characters
    ("jane@example", False),
    ("@example.com", False),
    ("jane@", False),
    ("jane@@example.com", False),
    ("jane doe@example.com", False),
    ("jane@example.com\n", False),
    ("jane\x00@example.com", False),  # NUL cannot even be stored in PostgreSQL text
    ("jane\x07@example.com", False),
    ("", False),
]


@pytest.mark.parametrize(("value", "valid"), EMAILS)
def test_email(value: str, valid: bool) -> None:
    assert is_email(value) is valid


def test_control_characters() -> None:
    for value in ("a\nb", "a\tb", "a\rb", "a\x00b", "a\x7fb", "a\x85b", "a\x9fb"):
        assert text.has_control_characters(value), repr(value)
    for value in ("plain", "with space", "h\u00e9llo", "emoji \U0001f600"):
        assert not text.has_control_characters(value), repr(value)


# --- annotations and tags -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        [],
        [{"smarter.sh/plugin/author": "Your Name"}, {"smarter.sh/plugin/license": "MIT"}],
        [{"a": 1}, {"b": None}, {"c": True}, {"d": [1, 2]}, {"e": {"nested": "ok"}}, {"f": 1.5}],
        [{"k": "x" * text.ANNOTATION_VALUE_MAX}],
        [{"A-Z_0.9/x": "ok"}],
    ],
)
def test_annotations_accepted(value: list[dict[str, Any]]) -> None:
    assert validate_annotations(value) == value


def test_annotations_none_is_empty() -> None:
    assert validate_annotations(None) == []


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1},  # an object, not a list
        "a=1",
        [["a", 1]],
        [{}],  # zero keys
        [{"a": 1, "b": 2}],  # two keys in one annotation
        ["a"],
        [{"bad key": 1}],  # space
        [{"k\u00e9y": 1}],
        [{"key\n": 1}],
        [{"": 1}],
        [{"k" * 256: 1}],
        [{"k": "x" * (text.ANNOTATION_VALUE_MAX + 1)}],
    ],
)
def test_annotations_rejected(value: Any) -> None:
    with pytest.raises(ValueError, match=r"annotation|Annotation"):
        validate_annotations(value)


def test_tags() -> None:
    assert validate_tags(None) == []
    assert validate_tags([]) == []
    assert validate_tags(["red", "green", "blue"]) == ["red", "green", "blue"]
    # Stripped and de-duplicated, first occurrence wins.
    assert validate_tags([" red ", "red", "blue", "red"]) == ["red", "blue"]
    assert validate_tags(["with spaces", "a.b/c:d@e", "x" * 100]) == ["with spaces", "a.b/c:d@e", "x" * 100]


@pytest.mark.parametrize(
    "value",
    [
        "red",
        [1],
        ["red", None],
        [""],
        ["   "],
        ["x" * 101],
        ["line\nbreak"],
        ["tab\there"],
        ["nul\x00"],
        ["<script>"],
        ['quote"d'],
    ],
)
def test_tags_rejected(value: Any) -> None:
    with pytest.raises(ValueError, match=r"[Tt]ag"):
        validate_tags(value)


# --- case conversion (study §2.5, §7 items 7-10) -----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("camelCase", "camel_case"),
        ("CamelCase", "camel_case"),
        ("Camel Case", "camel_case"),
        ("LLMClient", "llm_client"),
        ("MyEverlastingSUPERDUPERGobstopper", "my_everlasting_superduper_gobstopper"),
        ("userProfileID", "user_profile_id"),
        ("HTTPResponseCode", "http_response_code"),
        ("key2Value", "key2_value"),
        ("already_snake_case", "already_snake_case"),
        ("UserProfile", "user_profile"),
        ("FirstName LastName", "first_name_last_name"),
        ("snake-case-name", "snake_case_name"),
        ("my plugin!", "my_plugin!"),  # still not a valid name: normalise_name is the strict path
        ("__init__", "_init_"),
        ("", ""),
    ],
)
def test_to_snake_case(value: str, expected: str) -> None:
    assert to_snake_case(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("user_name", "userName"),
        ("last_used_at", "lastUsedAt"),
        ("api_v1_key", "apiV1Key"),
        ("x_y_z", "xYZ"),
        ("user__name", "userName"),
        ("_private", "Private"),
        ("first_name", "firstName"),
        ("already", "already"),
        ("", ""),
    ],
)
def test_to_camel_case(value: str, expected: str) -> None:
    assert to_camel_case(value) == expected


def test_round_trip_is_lossy_for_acronyms() -> None:
    assert to_camel_case(to_snake_case("userProfileID")) == "userProfileId"
    assert to_camel_case(to_snake_case("lastUsedAt")) == "lastUsedAt"


def test_convert_keys_recurses_into_dicts_and_lists() -> None:
    data = {"nestedDict": {"innerKey": 1, "deeperList": [{"itemKey": "keepThisValue"}]}, "topKey": [1, "twoThree"]}
    assert convert_keys(data, to_snake_case) == {
        "nested_dict": {"inner_key": 1, "deeper_list": [{"item_key": "keepThisValue"}]},
        "top_key": [1, "twoThree"],
    }
    assert convert_keys({"user_name": "first_name"}, to_camel_case) == {"userName": "first_name"}
    # The original's convert_values=True also rewrote values; here values are data and never change.
    assert convert_keys(["user_name", {"user_name": ["first_name"]}], to_camel_case) == [
        "user_name",
        {"userName": ["first_name"]},
    ]
    # Scalars and non-string keys pass through.
    assert convert_keys(5, to_camel_case) == 5
    assert convert_keys(None, to_camel_case) is None
    assert convert_keys({1: "a"}, to_camel_case) == {1: "a"}


# --- RFC 1034 (study §2.7, §7 items 12-14) --------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("My_LLMClient_2025", "my-llmclient-2025"),
        ("My@Bot!_Name", "mybot-name"),
        ("test_plugin", "test-plugin"),
        ("SmarterAuthToken", "smarterauthtoken"),
        ("__x__", "x"),
        ("h\u00e9llo w\u00f6rld", "hllowrld"),
        ("-leading-and-trailing-", "leading-and-trailing"),
    ],
)
def test_rfc1034_compliant(value: str, expected: str) -> None:
    assert rfc1034_compliant(value) == expected


@pytest.mark.parametrize("value", ["!!!", "___", "", "---", "\u00e9\u00e9"])
def test_rfc1034_compliant_raises(value: str) -> None:
    with pytest.raises(ValueError, match="RFC 1034"):
        rfc1034_compliant(value)


def test_rfc1034_truncates_to_63_and_never_ends_with_a_hyphen() -> None:
    assert rfc1034_compliant("a" * 100) == "a" * 63
    # Position 63 falls right after a hyphen: the original returned "aaa...a-".
    truncated = rfc1034_compliant("a" * 62 + "_bbbb")
    assert truncated == "a" * 62
    assert not truncated.endswith("-")
    for cut in range(55, 70):
        label = rfc1034_compliant("a" * cut + "_" + "b" * 20)
        assert len(label) <= 63
        assert not label.endswith("-")
        assert not label.startswith("-")


def test_rfc1034_to_snake() -> None:
    assert rfc1034_to_snake("my-llmclient-2025") == "my_llmclient_2025"
    assert rfc1034_to_snake("plain") == "plain"


# --- names (contract, "Decisions -> Names") ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Test Plugin", "test_plugin"),
        ("apiKey", "api_key"),  # the original's slugify lost the hump: `apikey`
        ("My Plugin (v2)!", "my_plugin_v2"),
        ("New API Key", "new_api_key"),
        ("h\u00e9llo", "hello"),
        ("x_", "x"),
        ("snake-case-name", "snake_case_name"),
        ("test_plugin", "test_plugin"),
        ("  Test Plugin  ", "test_plugin"),
        ("LLMClient", "llm_client"),
        ("APIKey", "api_key"),
        ("a__b", "a_b"),
        ("\uff34\uff45\uff53\uff54", "test"),  # full-width letters fold to ASCII
        ("Smarter Admin Account", "smarter_admin_account"),
        ("smarter-admin-key", "smarter_admin_key"),
        ("Secret 1", "secret_1"),
        ("2024 plan", "2024_plan"),
        ("a" * 50, "a" * 50),
        ("A" * 50, "a" * 50),
    ],
)
def test_normalise_name(value: str, expected: str) -> None:
    assert normalise_name(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        # Control characters anywhere, including at the ends (never silently stripped).
        "a\nb",
        "a\tb",
        "name\n",
        "\tname",
        "name\r",
        "na\x00me",
        "na\x7fme",
        "na\x85me",
        # Longer than 50 once normalised.
        "a" * 51,
        "word " * 11,
        # Nothing usable.
        "",
        "   ",
        "!!!",
        "___",
        "---",
        "()",
        "\u00df",  # no ASCII form
        "\u4e2d\u6587",
    ],
)
def test_normalise_name_rejects(value: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        normalise_name(value)


def test_normalise_name_is_idempotent() -> None:
    for value in ("Test Plugin", "apiKey", "My Plugin (v2)!", "New API Key", "h\u00e9llo"):
        once = normalise_name(value)
        assert normalise_name(once) == once
        assert is_snake_case(once)


# --- masking (study §2.8) ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kwargs", "expected"),
    [
        (TOKEN, {"mask_length": 4, "string_length": 12}, "********9b0c"),
        (TOKEN, {"mask_length": 4, "string_length": 8}, "****9b0c"),
        ("supersecretpassword", {"mask_length": 4, "string_length": 12}, "********word"),
        ("supersecretpassword", {"mask_char": "#", "mask_length": 3, "string_length": 8}, "#####ord"),
        ("abcd", {"mask_length": 4, "string_length": 12}, "abcd"),
        ("abc", {}, "abc"),
        ("abcde", {"mask_length": 4, "string_length": 12}, "*bcde"),
        (b"secret", {"mask_length": 2, "string_length": 12}, "****et"),
        # The original returned "******secret" here (masked[-0:] is the whole string); 0 means "no cap".
        ("secret", {"mask_length": 4, "string_length": 0}, "**cret"),
        ("secret", {"mask_length": 0}, "******"),
        (12345, {}, "12345"),
    ],
)
def test_mask_string(value: Any, kwargs: dict[str, Any], expected: str) -> None:
    assert mask_string(value, **kwargs) == expected


def test_mask_string_never_reveals_more_than_the_tail() -> None:
    for string_length in (0, 1, 4, 8, 12, 100):
        masked = mask_string(TOKEN, mask_length=4, string_length=string_length)
        assert TOKEN not in masked
        visible = masked.lstrip("*")
        assert len(visible) <= 4
        assert TOKEN.endswith(visible)
