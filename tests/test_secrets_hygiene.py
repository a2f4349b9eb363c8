"""The session-wide secrets scan (tests/secrets_scan.py) finds leaks, ignores ordinary logs, and fails a run."""

from __future__ import annotations

import logging
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from app.services import keys
from tests.live import PROJECT_ROOT
from tests.secrets_scan import SCANNER

logger = logging.getLogger("app.tests.hygiene")


@pytest.fixture
def deliberate() -> Iterator[int]:
    """The leaks this test logs on purpose are removed afterwards, so that they do not fail the session."""
    before = len(SCANNER.leaks)
    yield before
    del SCANNER.leaks[before:]


@pytest.mark.parametrize(
    "secret",
    [
        secrets.token_hex(32),  # a plaintext key
        keys.digest_of(secrets.token_hex(32)),  # its SHA-512 digest
        "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        "$2b$12$abcdefghijklmnopqrstuv",
    ],
    ids=["key", "digest", "argon2", "bcrypt"],
)
def test_a_secret_in_any_record_is_found(deliberate: int, secret: str) -> None:
    logger.warning("calling with %s", secret)
    assert SCANNER.leaks[deliberate:] == ["logger 'app.tests.hygiene' (WARNING)"]


def test_a_secret_in_a_traceback_is_found(deliberate: int) -> None:
    try:
        raise ValueError(f"bad key {secrets.token_hex(32)}")
    except ValueError:
        logger.exception("failed")
    assert len(SCANNER.leaks) == deliberate + 1


async def test_a_basic_login_password_becomes_a_secret(deliberate: int, client: httpx.AsyncClient) -> None:
    password = f"pw-{secrets.token_urlsafe(12)}"
    response = await client.post("/api/v1/auth/login/", auth=("nobody", password))  # the test client remembers it
    assert response.status_code == 401
    logger.info("user nobody tried %s", password)
    assert len(SCANNER.leaks) == deliberate + 1


def test_ordinary_records_are_not_leaks(deliberate: int) -> None:
    logger.warning("key %s (tokenKey %s) in account 3141-5926-5359", uuid.uuid4(), secrets.token_hex(7)[:15])
    logger.warning("schema at revision %s; origin %s", secrets.token_hex(6), secrets.token_hex(8))
    assert SCANNER.leaks[deliberate:] == []


def test_a_leak_fails_the_whole_run(tmp_path: Path) -> None:
    """A run whose tests all pass still exits non-zero when one of them logged a key."""
    leaky = tmp_path / "test_leaky.py"
    leaky.write_text(
        "import logging\n\n"
        "def test_passes_but_leaks():\n"
        f"    logging.getLogger('app.leaky').error('issued %s', '{'ab' * 32}')\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest", str(leaky)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.stdout + run.stderr
    assert "1 passed" in run.stdout
    assert "SECRETS IN LOGS: 1 record(s) from: logger 'app.leaky' (ERROR)" in run.stdout
    assert "ab" * 32 not in run.stdout


def test_secret_values_and_their_ciphertexts_are_found(deliberate: int) -> None:
    SCANNER.remember_password("a-secret-value-sent-by-a-test")
    logger.warning("connecting with %s", "a-secret-value-sent-by-a-test")
    logger.warning("stored %s", Fernet(Fernet.generate_key()).encrypt(b"x").decode())
    logger.warning("describe shows %s", "********")  # the mask is not a secret
    assert len(SCANNER.leaks) == deliberate + 2
