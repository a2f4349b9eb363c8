"""What a connection's values must be: supported engines and auth methods, default ports, the messages."""

from __future__ import annotations

from typing import Literal

from app.errors import Unprocessable

Kind = Literal["sql", "api"]
KINDS: dict[Kind, str] = {"sql": "SqlConnection", "api": "ApiConnection"}

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
TIMEOUT_RANGE = (1, 30)

NOT_FOUND = {
    "sql": "No SQL connection with this id is visible to you.",
    "api": "No API connection with this id is visible to you.",
}
FORBIDDEN = "You can read this connection but not change it: it belongs to another user."


def engine_family(db_engine: str) -> str:
    """`postgresql`, `mysql` or `sqlite` for a supported `dbEngine` (stored values are always supported)."""
    return DB_ENGINES[db_engine]


def check_db_engine(value: str, *, where: str = "body") -> str:
    if value not in DB_ENGINES:
        supported = ", ".join(DB_ENGINES)
        raise Unprocessable.field(
            "dbEngine", f"Unsupported database engine {value!r}; supported: {supported}.", where=where
        )
    return value


def check_choice(field: str, value: str, supported: tuple[str, ...], *, where: str = "body") -> str:
    if value not in supported:
        raise Unprocessable.field(
            field, f"Unsupported {field} {value!r}; supported: {', '.join(supported)}.", where=where
        )
    return value


def default_port(db_engine: str, port: int | None) -> int | None:
    """The port given, else the engine's default (SQLite has none)."""
    return port if port is not None else DEFAULT_PORTS.get(engine_family(db_engine))
