"""What a connection's values must be beyond its fields' own rules (`app.schemas.connections`): the two
kinds, their models and secret references, default ports, the rules on a whole row, the messages."""

from __future__ import annotations

from typing import Any, Literal

from app.errors import Unprocessable
from app.models import ApiConnection, SqlConnection
from app.schemas.connections import DB_ENGINES, DEFAULT_PORTS, check_sql_host

Kind = Literal["sql", "api"]
ConnectionModel = type[SqlConnection] | type[ApiConnection]
Connection = SqlConnection | ApiConnection

KINDS: dict[Kind, str] = {"sql": "SqlConnection", "api": "ApiConnection"}
MODELS: dict[Kind, Any] = {"sql": SqlConnection, "api": ApiConnection}
# The credential fields of each kind (the schemas' snake_case names -> the column holding the secret's id).
SECRET_ATTRIBUTES: dict[Kind, dict[str, str]] = {
    "sql": {"password": "password_secret_id", "proxy_password": "proxy_password_secret_id"},
    "api": {"api_key": "api_key_secret_id", "proxy_password": "proxy_password_secret_id"},
}
LABELS: dict[Kind, str] = {"sql": "SQL connection", "api": "API connection"}

NOT_FOUND: dict[Kind, str] = {
    "sql": "No SQL connection with this id is visible to you.",
    "api": "No API connection with this id is visible to you.",
}
FORBIDDEN = "You can read this connection but not change it: it belongs to another user."


def engine_family(db_engine: str) -> str:
    """`postgresql`, `mysql` or `sqlite` for a supported `dbEngine` (stored values are always supported)."""
    return DB_ENGINES[db_engine]


def default_port(db_engine: str, port: int | None) -> int | None:
    """The port given, else the engine's default (SQLite has none)."""
    return port if port is not None else DEFAULT_PORTS.get(engine_family(db_engine))


def check_row(kind: Kind, row: Connection, *, where: str = "body") -> None:
    """The rules on the whole row after a partial update (each field was checked on its own already)."""
    if isinstance(row, SqlConnection):
        try:
            check_sql_host(row.db_engine, row.hostname)
        except ValueError as exc:
            raise Unprocessable.field("hostname", str(exc), where=where) from exc
    elif row.auth_method != "none" and row.api_key_secret_id is None:
        raise Unprocessable.field(
            "apiKey", f"apiKey (the name of a secret) is required for authMethod {row.auth_method!r}.", where=where
        )


def conflict_message(kind: Kind, name: str) -> str:
    return f"An {LABELS[kind]} named {name!r} already exists in this account."
