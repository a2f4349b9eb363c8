"""Secrets hygiene over a whole test run: every log record is scanned for keys, digests and passwords.

A handler on the root logger (installed by `tests/conftest.py` for the session) checks each record as it is
emitted, so it sees what any handler would print, whatever pytest captures. It looks for the shapes of
secrets, which need no registry: a 64-hex plaintext key, a 128-hex SHA-512 digest (any run of 64 or more hex
digits), an argon2 or bcrypt hash, a Fernet token (an encrypted secret value); and for the passwords and secret
values the tests sent (HTTP Basic logins, `value` of `/api/v1/secrets/` bodies and of `Secret` manifests,
remembered by the test client; tests driving other clients, such as the SDK, remember theirs). The live
servers' logs (their stderr) are scanned the same way when they stop. Any find fails the session in
`pytest_sessionfinish`, naming the logger and never printing the secret.
"""

from __future__ import annotations

import base64
import json
import logging
import re

import httpx

# Hex runs of 64+ (keys, digests), argon2 and bcrypt hashes, Fernet tokens (version byte 0x80: `gAAAAA`).
SECRET_SHAPES = re.compile(
    r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{64,}(?![0-9A-Fa-f])|\$argon2(?:id|i|d)\$|\$2[aby]\$\d\d\$"
    r"|gAAAAA[A-Za-z0-9_-]{80,}"
)
# What describe shows instead of a secret's value: not a secret.
MASK = "********"


class SecretScanner(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.passwords: set[str] = set()
        self.leaks: list[str] = []

    def remember_password(self, password: str) -> None:
        if len(password) >= 8 and password != MASK:  # shorter ones would match ordinary words
            self.passwords.add(password)

    def leaked(self, text: str) -> bool:
        return bool(SECRET_SHAPES.search(text)) or any(password in text for password in self.passwords)

    def check(self, source: str, text: str) -> None:
        if self.leaked(text):
            self.leaks.append(source)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a malformed record is the logging call's bug, not a leak
            text = str(record.msg)
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.check(f"logger {record.name!r} ({record.levelname})", text)


SCANNER = SecretScanner()


async def remember_basic_password(request: httpx.Request) -> None:
    """An httpx request hook: the password of an HTTP Basic login becomes a secret to look for."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            _, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return
        SCANNER.remember_password(password)


def _secret_value(path: str, body: object) -> object:
    if not isinstance(body, dict):
        return None
    if path.startswith("/api/v1/secrets"):
        return body.get("value")
    if path.startswith("/api/v1/cli/") and body.get("kind") == "Secret":
        spec = body.get("spec")
        config = spec.get("config") if isinstance(spec, dict) else None
        return config.get("value") if isinstance(config, dict) else None
    return None


async def remember_secret_value(request: httpx.Request) -> None:
    """An httpx request hook: the `value` of a secret sent as JSON (REST or a `Secret` manifest) becomes a
    secret to look for."""
    path = request.url.path
    if request.method not in ("POST", "PUT", "PATCH") or not path.startswith(("/api/v1/secrets", "/api/v1/cli/")):
        return
    try:
        body = json.loads(request.content)
    except (httpx.RequestNotRead, ValueError, RecursionError):  # streamed (size-limit tests), not JSON, hostile
        return
    value = _secret_value(path, body)
    if isinstance(value, str):
        SCANNER.remember_password(value)
