"""The secrets' cipher: Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`) under a MultiFernet.

Keys come from `SMARTER_CORE_SECRETS_KEYS`, newest first: the newest encrypts, every one decrypts, and
`rotate` re-encrypts a token under the newest. The embedded default (SQLite, setting unset) keeps one
generated key in `secrets.key` next to its database file (mode 0600). With PostgreSQL and no key the
cipher is `unconfigured`: `serve` refuses to start, and anything else that reaches it answers 503.

One cipher per process, owned by the app's runtime (or an operator command); services receive it.
"""

from __future__ import annotations

import base64
import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

from app.config import Settings, secrets_keys
from app.errors import ServiceUnavailable

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

KEY_FILE_NAME = "secrets.key"
KEYS_MISSING = (
    "SMARTER_CORE_SECRETS_KEYS is not set: secrets need a key with PostgreSQL "
    "(create one with `smarter-core generate-secrets-key`)."
)
UNDECRYPTABLE = (
    "A stored secret cannot be decrypted with the keys in SMARTER_CORE_SECRETS_KEYS "
    "(keep the old key after the new one until `smarter-core rotate-secrets` has run)."
)


class SecretsNotConfigured(ServiceUnavailable):
    """No key: PostgreSQL without `SMARTER_CORE_SECRETS_KEYS`."""


class SecretUndecryptable(ServiceUnavailable):
    """A stored token that none of the configured keys opens (a key was dropped too early)."""


def generate_key() -> str:
    """A new Fernet key: 32 random bytes in url-safe base64 (what `Fernet.generate_key` makes)."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def key_file_of(database_url: str) -> Path | None:
    """Where the embedded default keeps its key: `secrets.key` next to a SQLite file (None otherwise)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).resolve().parent / KEY_FILE_NAME


def read_or_create_key_file(path: Path) -> str:
    """The key in `path`, created (mode 0600, atomically: concurrent starters agree) when absent."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secrets-key-")  # mode 0600
        try:
            with os.fdopen(descriptor, "w", encoding="ascii") as handle:
                handle.write(generate_key() + "\n")
            with contextlib.suppress(FileExistsError):  # another process made it first: theirs is the key
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    key = path.read_text(encoding="ascii").strip()
    secrets_keys(key)  # a damaged file is refused here, before any secret is written with it
    return key


def configured_keys(settings: Settings) -> list[str] | None:
    """The keys this process uses, newest first: the setting's, else the SQLite key file's (created on
    first use), else None (PostgreSQL without a key; an in-memory SQLite database gets a key of its own)."""
    if settings.secrets_keys is not None:
        return secrets_keys(settings.secrets_keys.get_secret_value())
    if not settings.is_sqlite:
        return None
    path = key_file_of(settings.database_url)
    return [read_or_create_key_file(path) if path is not None else generate_key()]


class SecretCipher:
    """Encrypts and decrypts secret values; never logs or shows them.

    `cryptography` is imported by the first secret encrypted or revealed (~8 MiB a worker that serves no
    secret does without); the keys were checked when read (`app.config.secrets_keys`).
    """

    __slots__ = ("_fernet", "_keys", "key_count")

    def __init__(self, keys: list[str] | None) -> None:
        self._keys = list(keys) if keys else None
        self._fernet: MultiFernet | None = None
        self.key_count = len(keys) if keys else 0

    @classmethod
    def for_settings(cls, settings: Settings) -> SecretCipher:
        return cls(configured_keys(settings))

    @classmethod
    def unconfigured(cls) -> SecretCipher:
        return cls(None)

    @property
    def configured(self) -> bool:
        return self._keys is not None

    def _cipher(self) -> MultiFernet:
        if self._fernet is None:
            if self._keys is None:
                raise SecretsNotConfigured(KEYS_MISSING)
            from cryptography.fernet import Fernet, MultiFernet

            self._fernet = MultiFernet([Fernet(key.encode("ascii")) for key in self._keys])
        return self._fernet

    def encrypt(self, value: str) -> str:
        return self._cipher().encrypt(value.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        with self._undecryptable() as cipher:
            return cipher.decrypt(token.encode("ascii")).decode("utf-8")

    def rotate(self, token: str) -> str:
        """`token` encrypted anew under the newest key (the value is never returned)."""
        with self._undecryptable() as cipher:
            return cipher.rotate(token.encode("ascii")).decode("ascii")

    @contextlib.contextmanager
    def _undecryptable(self) -> Iterator[MultiFernet]:
        """The cipher, with a token it cannot read (another key, tampered, not text) as `SecretUndecryptable`."""
        cipher = self._cipher()
        from cryptography.fernet import InvalidToken  # imported by `_cipher` already

        try:
            yield cipher
        except (InvalidToken, UnicodeError):
            raise SecretUndecryptable(UNDECRYPTABLE) from None

    def __repr__(self) -> str:
        return f"SecretCipher(keys={self.key_count})"
