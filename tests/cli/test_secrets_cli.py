"""The secrets' operator side: `generate-secrets-key`, the key setting's validation, and `serve` refusing
PostgreSQL without a key (one line, before the schema is touched). Rotation: tests/secrets."""

from __future__ import annotations

import asyncio

import pytest
from cryptography.fernet import Fernet

from app.services.secrets import generate_key
from tests.cli import revision_of
from tests.cli.test_operator_errors import assert_one_error_line, in_process


def test_generate_secrets_key_prints_a_fernet_key() -> None:
    result = in_process("generate-secrets-key")
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert Fernet(key).decrypt(Fernet(key).encrypt(b"x")) == b"x"
    assert in_process("generate-secrets-key").stdout.strip() != key


def test_a_malformed_key_setting_is_refused_without_showing_it(tmp_path: object) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3"}
    for keys in ("not-a-key-at-all", f"{generate_key()},short", ","):
        result = in_process("rotate-secrets", env={**env, "SMARTER_CORE_SECRETS_KEYS": keys})
        line = assert_one_error_line(result, 2, "invalid setting", "SMARTER_CORE_SECRETS_KEYS")
        assert "not-a-key" not in line
        assert "short" not in line.replace("SMARTER_CORE_SECRETS_KEYS", "")


@pytest.mark.postgres_only
def test_serve_refuses_postgresql_without_a_key(empty_url: str) -> None:
    for command in (("serve",), ("rotate-secrets",)):
        result = in_process(*command, env={"DATABASE_URL": empty_url})
        assert_one_error_line(result, 2, "SMARTER_CORE_SECRETS_KEYS is not set", "generate-secrets-key")
    assert asyncio.run(revision_of(empty_url)) is None  # refused before migrating
