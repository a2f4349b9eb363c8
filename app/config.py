"""Settings, read once from the environment (and an optional `.env`)."""

from __future__ import annotations

import base64
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.network import NetworkPolicy

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = PROJECT_ROOT / "var" / "smarter-core.sqlite3"


def normalise_database_url(url: str) -> str:
    """Give bare `postgresql://` and `sqlite://` URLs the async drivers this service uses."""
    for prefix, driver in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(prefix):
            return driver + url[len(prefix) :]
    return url


class Settings(BaseSettings):
    """Every knob of the service. `DATABASE_URL` is unprefixed, as operators expect."""

    model_config = SettingsConfigDict(
        env_prefix="SMARTER_CORE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = Field(
        default=f"sqlite+aiosqlite:///{DEFAULT_SQLITE_PATH}",
        validation_alias=AliasChoices("DATABASE_URL", "SMARTER_CORE_DATABASE_URL"),
        description="SQLAlchemy URL; postgresql:// and sqlite:// are given their async drivers.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=9357, ge=1, le=65535)
    workers: int = Field(default=1, ge=1)
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    # text on a terminal, JSON lines otherwise (a container's log collector).
    log_format: Literal["text", "json"] | None = None
    # Prometheus metrics at /metrics; false: no /metrics (404) and nothing counted.
    metrics: bool = True
    environment: str = "local"

    # Database pool (PostgreSQL) and the time any database wait may take before a 503. One worker is one
    # event loop on one CPU: a few connections keep it busy on short statements, and each more one is a server
    # process competing for the database's CPUs (at 32, a caches-off read load on two CPUs answered a quarter
    # fewer requests than at 16, its p99 twice as long: `make bench`, scenario c). 16 + 8 per worker also
    # lets three workers share PostgreSQL's default `max_connections` of 100 (32 + 8 exceeded it at three).
    db_pool_size: int = Field(default=16, ge=1)
    db_max_overflow: int = Field(default=8, ge=0)
    db_pool_timeout: float = Field(default=5.0, gt=0)
    db_connect_timeout: float = Field(default=5.0, gt=0)
    db_command_timeout: float = Field(default=15.0, gt=0)
    # How long `serve` waits (with backoff) for an unreachable database before it gives up.
    db_startup_timeout: float = Field(default=30.0, ge=0)
    # A pooled connection idle longer than this is pinged before use (0: before every use).
    db_ping_after_idle: float = Field(default=1.0, ge=0)

    # Authentication.
    login_token_ttl: int = Field(default=10 * 3600, gt=0, description="Seconds a login token lives.")
    last_used_interval: int = Field(default=60, ge=0, description="Seconds between lastUsedAt writes.")
    api_key_prefix_length: int = Field(default=15, ge=8, le=32, description="Length of the stored tokenKey.")

    # Caches: TTL 0 disables them (the benchmark's "cache disabled" run).
    cache_ttl: float = Field(default=60.0, ge=0)
    cache_maxsize: int = Field(default=10_000, ge=1)
    # LISTEN connection liveness probe and reconnect backoff ceiling (PostgreSQL only).
    listen_probe_interval: float = Field(default=5.0, gt=0)
    listen_backoff_max: float = Field(default=10.0, gt=0)

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)

    # What SQL and API connections may reach: `public` (global addresses only), `any`, or `public,<cidr>,...`
    # (`app.network`).
    plugin_networks: str = "public"

    # Optional password for the bootstrap `admin`; without it, admin logs in with the printed key only.
    admin_password: SecretStr | None = None

    # Keys of the secrets' cipher (Fernet keys, comma-separated, newest first; older ones still decrypt).
    # Unset: SQLite generates one into `secrets.key` next to its database file; PostgreSQL refuses to serve.
    secrets_keys: SecretStr | None = None

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        return normalise_database_url(value)

    @field_validator("plugin_networks")
    @classmethod
    def _network_policy(cls, value: str) -> str:
        NetworkPolicy.parse(value)
        return value

    @field_validator("secrets_keys")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            secrets_keys(value.get_secret_value())  # a refusal names the key's position, never the key
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def secrets_keys(value: str) -> list[str]:
    """The keys of `SMARTER_CORE_SECRETS_KEYS`, newest first; each must be a Fernet key (32 random bytes in
    url-safe base64, as `smarter-core generate-secrets-key` prints)."""
    keys = [part.strip() for part in value.split(",") if part.strip()]
    if not keys:
        raise ValueError("no key given (a Fernet key, or several comma-separated, newest first).")
    for position, key in enumerate(keys, start=1):
        try:
            raw = base64.urlsafe_b64decode(key.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raw = b""
        if len(raw) != 32:
            raise ValueError(
                f"key {position} is not a Fernet key (32 bytes in url-safe base64, e.g. from "
                "`smarter-core generate-secrets-key`)."
            )
    return keys


@lru_cache
def get_settings() -> Settings:
    """The process's settings (tests build their own `Settings` and pass them to `create_app`)."""
    return Settings()
