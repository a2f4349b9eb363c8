"""SQL and API connection shapes (`/api/v1/connections/sql/`, `/api/v1/connections/api/`).

The field rules (supported engines and auth methods, ranges, URLs, secret names) are defined once here and
shared by the REST inputs and the `SqlConnection`/`ApiConnection` manifests (`app.schemas.manifests.connection`).
Credentials are the **names** of secrets of the connection's account, never values; `sslKey` (a private key)
is write-only: rows show `********` when one is set, and giving that mask back keeps the stored key.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from app import text
from app.models.connection import CONNECTION_TIMEOUT_MAX
from app.schemas.base import (
    CamelModel,
    InputModel,
    MetadataCreate,
    MetadataRead,
    MetadataUpdate,
    Name,
    OwnerRef,
)
from app.schemas.users import AccountNumber, PatchModel

# dbEngine values (Django's, as the SDK sends them, and their short forms) -> the engine family.
DB_ENGINES: dict[str, str] = {
    "django.db.backends.postgresql": "postgresql",
    "django.db.backends.mysql": "mysql",
    "django.db.backends.sqlite3": "sqlite",
    "postgresql": "postgresql",
    "mysql": "mysql",
    "sqlite": "sqlite",
}
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}
AUTHENTICATION_METHODS = ("none", "tcpip")
AUTH_METHODS = ("none", "basic", "token", "api_key")
PROXY_PROTOCOLS = ("http", "https")
SSL_KEY_MASK = "********"
TEXT_MAX = 65536


def _choice(field: str, supported: tuple[str, ...]) -> Any:
    def check(value: str) -> str:
        if value not in supported:
            raise ValueError(f"unsupported {field} {value!r}; supported: {', '.join(supported)}.")
        return value

    return AfterValidator(check)


def _line(value: str) -> str:
    if text.has_control_characters(value):
        raise ValueError("may not contain control characters such as newlines or tabs.")
    return value.strip()


def _base_url(value: str) -> str:
    value = value.strip()
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValueError("must be an absolute http(s) URL such as https://api.example.com/v1/.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or text.has_control_characters(value):
        raise ValueError("must be an absolute http(s) URL such as https://api.example.com/v1/.")
    if port == 0:
        raise ValueError("has an invalid port.")
    return value


DbEngine = Annotated[
    str, Field(max_length=100, examples=["django.db.backends.postgresql"]), _choice("dbEngine", tuple(DB_ENGINES))
]
AuthenticationMethod = Annotated[str, Field(max_length=20), _choice("authenticationMethod", AUTHENTICATION_METHODS)]
AuthMethod = Annotated[str, Field(max_length=20, examples=["token"]), _choice("authMethod", AUTH_METHODS)]
ProxyProtocol = Annotated[str, Field(max_length=10), _choice("proxyProtocol", PROXY_PROTOCOLS)]
Host = Annotated[str, Field(max_length=255, examples=["db.example.com"]), AfterValidator(_line)]
Line = Annotated[str, Field(max_length=255), AfterValidator(_line)]
Port = Annotated[int, Field(ge=1, le=65535)]
Timeout = Annotated[int, Field(ge=1, le=CONNECTION_TIMEOUT_MAX, description="Seconds, 1..30.")]
PoolSize = Annotated[int, Field(ge=1, le=50)]
MaxOverflow = Annotated[int, Field(ge=0, le=100)]
LongText = Annotated[str, Field(max_length=TEXT_MAX)]
BaseUrl = Annotated[str, Field(max_length=2048, examples=["https://api.example.com/v1/"]), AfterValidator(_base_url)]
# A secret of the connection's account, by name (normalised like every name).
SecretName = Annotated[Name, Field(examples=["db_password"], description="The name of a secret of this account.")]
Database = Annotated[str, Field(min_length=1, max_length=1024, examples=["sales"]), AfterValidator(_line)]


# Proxy and SSH settings round-trip (the SDK's shapes have them) but connections are made directly.
_KEPT = "Stored and shown; connections are made directly (proxies and SSH tunnels are not used)."


def check_sql_host(db_engine: str, hostname: str) -> None:
    """Network engines need a host; SQLite's `database` is a file path and needs none."""
    if DB_ENGINES[db_engine] != "sqlite" and not hostname:
        raise ValueError(f"hostname is required for {db_engine}.")


# --- the connection fields, shared by REST and manifests --------------------------------------------------


class SqlConnectionFields(InputModel):
    """An SQL connection as the SDK's `SqlConnection.spec.connection`."""

    db_engine: DbEngine
    hostname: Host = ""
    port: Port | None = Field(None, description="Default by engine: 5432 (PostgreSQL), 3306 (MySQL/MariaDB).")
    database: Database
    username: Line | None = None
    password: SecretName | None = None
    authentication_method: AuthenticationMethod = "none"
    timeout: Timeout = CONNECTION_TIMEOUT_MAX
    use_ssl: bool = False
    ssl_ca: LongText | None = None
    ssl_cert: LongText | None = None
    ssl_key: LongText | None = Field(None, description="A private key: write-only, shown as `********`.")
    pool_size: PoolSize = 5
    max_overflow: MaxOverflow = 10
    proxy_host: Host | None = Field(None, description=_KEPT)
    proxy_port: Port | None = Field(None, description=_KEPT)
    proxy_username: Line | None = Field(None, description=_KEPT)
    proxy_password: SecretName | None = Field(None, description=_KEPT)
    ssh_known_hosts: LongText | None = Field(None, description=_KEPT)

    @model_validator(mode="after")
    def _host_required(self) -> Self:
        check_sql_host(self.db_engine, self.hostname)
        return self


class ApiConnectionFields(InputModel):
    """An API connection as the SDK's `ApiConnection.spec.connection` (plus `username` for basic auth)."""

    base_url: BaseUrl
    auth_method: AuthMethod = "none"
    username: Line | None = Field(None, description="The user of `basic` auth (`username:<apiKey secret>`).")
    api_key: SecretName | None = None
    timeout: Timeout = CONNECTION_TIMEOUT_MAX
    proxy_protocol: ProxyProtocol | None = Field(None, description=_KEPT)
    proxy_host: Host | None = Field(None, description=_KEPT)
    proxy_port: Port | None = Field(None, description=_KEPT)
    proxy_username: Line | None = Field(None, description=_KEPT)
    proxy_password: SecretName | None = Field(None, description=_KEPT)

    @model_validator(mode="after")
    def _secret_for_auth(self) -> Self:
        if self.auth_method != "none" and self.api_key is None:
            raise ValueError(f"apiKey (the name of a secret) is required for authMethod {self.auth_method!r}.")
        return self


# `warehouse_password` is the secret of the secrets' own example (`app.schemas.secrets`).
_SQL_EXAMPLE: dict[str, Any] = {
    "name": "warehouse",
    "description": "The warehouse database (read-only user)",
    "dbEngine": "django.db.backends.postgresql",
    "hostname": "db.example.com",
    "port": 5432,
    "database": "warehouse",
    "username": "reader",
    "password": "warehouse_password",
    "timeout": 10,
}
_API_EXAMPLE: dict[str, Any] = {
    "name": "weather_api",
    "description": "The weather service",
    "baseUrl": "https://api.example.com/v1/",
    "authMethod": "none",
    "timeout": 10,
}
_API_TOKEN_EXAMPLE: dict[str, Any] = {
    **_API_EXAMPLE,
    "name": "weather_api_private",
    "authMethod": "token",
    "apiKey": "weather_api_key",
}


# --- REST inputs ----------------------------------------------------------------------------------------


class SqlConnectionCreate(MetadataCreate, SqlConnectionFields):
    """A new SQL connection owned by your profile in your acting account (or `accountNumber`)."""

    account_number: AccountNumber | None = None

    model_config = ConfigDict(json_schema_extra={"examples": [_SQL_EXAMPLE]})


class SqlConnectionPut(MetadataCreate, SqlConnectionFields):
    """Every field of the connection; missing ones take their defaults."""

    model_config = ConfigDict(json_schema_extra={"examples": [_SQL_EXAMPLE]})


class ApiConnectionCreate(MetadataCreate, ApiConnectionFields):
    """A new API connection owned by your profile in your acting account (or `accountNumber`)."""

    account_number: AccountNumber | None = None

    model_config = ConfigDict(json_schema_extra={"examples": [_API_EXAMPLE, _API_TOKEN_EXAMPLE]})


class ApiConnectionPut(MetadataCreate, ApiConnectionFields):
    """Every field of the connection; missing ones take their defaults."""

    model_config = ConfigDict(json_schema_extra={"examples": [_API_EXAMPLE]})


class SqlConnectionUpdate(PatchModel, MetadataUpdate):
    """Only the fields sent change; `null` clears an optional field (`port: null`: the engine's default)."""

    nullable: ClassVar[frozenset[str]] = frozenset(
        {"port", "username", "password", "ssl_ca", "ssl_cert", "ssl_key", "proxy_host", "proxy_port"}
        | {"proxy_username", "proxy_password", "ssh_known_hosts"}
    )

    db_engine: DbEngine | None = None
    hostname: Host | None = None
    port: Port | None = None
    database: Database | None = None
    username: Line | None = None
    password: SecretName | None = None
    authentication_method: AuthenticationMethod | None = None
    timeout: Timeout | None = None
    use_ssl: bool | None = None
    ssl_ca: LongText | None = None
    ssl_cert: LongText | None = None
    ssl_key: LongText | None = None
    pool_size: PoolSize | None = None
    max_overflow: MaxOverflow | None = None
    proxy_host: Host | None = None
    proxy_port: Port | None = None
    proxy_username: Line | None = None
    proxy_password: SecretName | None = None
    ssh_known_hosts: LongText | None = None

    model_config = ConfigDict(json_schema_extra={"examples": [{"timeout": 5}, {"password": "rotated_password"}]})


class ApiConnectionUpdate(PatchModel, MetadataUpdate):
    """Only the fields sent change; `null` clears an optional field."""

    nullable: ClassVar[frozenset[str]] = frozenset(
        {"username", "api_key", "proxy_protocol", "proxy_host", "proxy_port", "proxy_username", "proxy_password"}
    )

    base_url: BaseUrl | None = None
    auth_method: AuthMethod | None = None
    username: Line | None = None
    api_key: SecretName | None = None
    timeout: Timeout | None = None
    proxy_protocol: ProxyProtocol | None = None
    proxy_host: Host | None = None
    proxy_port: Port | None = None
    proxy_username: Line | None = None
    proxy_password: SecretName | None = None

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"timeout": 5}, {"baseUrl": "https://api.example.com/v2/"}]}
    )


# --- outputs --------------------------------------------------------------------------------------------


class ConnectionRead(MetadataRead):
    user_profile: OwnerRef


class SqlConnectionRead(ConnectionRead):
    kind: Literal["SqlConnection"] = "SqlConnection"
    db_engine: str
    hostname: str
    port: int | None
    database: str
    username: str | None
    password: str | None = Field(description="The name of the secret holding the password.")
    authentication_method: str
    timeout: int
    use_ssl: bool
    ssl_ca: str | None
    ssl_cert: str | None
    ssl_key: str | None = Field(description="`********` when a key is set (never the key).")
    pool_size: int
    max_overflow: int
    proxy_host: str | None
    proxy_port: int | None
    proxy_username: str | None
    proxy_password: str | None = Field(description="The name of the secret holding the proxy password.")
    ssh_known_hosts: str | None


class ApiConnectionRead(ConnectionRead):
    kind: Literal["ApiConnection"] = "ApiConnection"
    base_url: str
    auth_method: str
    username: str | None
    api_key: str | None = Field(description="The name of the secret holding the key, token or password.")
    timeout: int
    proxy_protocol: str | None
    proxy_host: str | None
    proxy_port: int | None
    proxy_username: str | None
    proxy_password: str | None = Field(description="The name of the secret holding the proxy password.")


class ConnectionTestResult(CamelModel):
    """What `test/` found: whether the connection opened (SQL: `SELECT 1`; API: `HEAD`, then `GET`)."""

    ok: bool
    latency_ms: float = Field(description="Milliseconds the attempt took.")
    error: str | None = Field(description="Why it failed, as a sentence without secrets; null when ok.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"ok": True, "latencyMs": 12.5, "error": None},
                {"ok": False, "latencyMs": 3.1, "error": "The address 10.0.0.5 is private: ..."},
            ]
        }
    )
