"""Connections as the API shows them: the REST row and the manifest (`describe`), credentials as secret names."""

from __future__ import annotations

from typing import Any

from pydantic.alias_generators import to_camel

from app.models import SqlConnection
from app.schemas.connections import SSL_KEY_MASK, ApiConnectionRead, SqlConnectionRead
from app.schemas.manifests.base import API_VERSION
from app.services.connections.rules import KINDS, Connection, Kind
from app.text import iso_utc

ConnectionRead = SqlConnectionRead | ApiConnectionRead


def _secret(names: dict[int, str], secret_id: int | None) -> str | None:
    return names.get(secret_id) if secret_id is not None else None


def spec_of(connection: Connection, names: dict[int, str]) -> dict[str, Any]:
    """The connection's own fields (snake_case), credentials as secret names, the SSL key masked."""
    if isinstance(connection, SqlConnection):
        return {
            "db_engine": connection.db_engine,
            "hostname": connection.hostname,
            "port": connection.port,
            "database": connection.database,
            "username": connection.username,
            "password": _secret(names, connection.password_secret_id),
            "authentication_method": connection.authentication_method,
            "timeout": connection.timeout,
            "use_ssl": connection.use_ssl,
            "ssl_ca": connection.ssl_ca,
            "ssl_cert": connection.ssl_cert,
            "ssl_key": SSL_KEY_MASK if connection.ssl_key else None,
            "pool_size": connection.pool_size,
            "max_overflow": connection.max_overflow,
            "proxy_host": connection.proxy_host,
            "proxy_port": connection.proxy_port,
            "proxy_username": connection.proxy_username,
            "proxy_password": _secret(names, connection.proxy_password_secret_id),
            "ssh_known_hosts": connection.ssh_known_hosts,
        }
    return {
        "base_url": connection.base_url,
        "auth_method": connection.auth_method,
        "username": connection.username,
        "api_key": _secret(names, connection.api_key_secret_id),
        "timeout": connection.timeout,
        "proxy_protocol": connection.proxy_protocol,
        "proxy_host": connection.proxy_host,
        "proxy_port": connection.proxy_port,
        "proxy_username": connection.proxy_username,
        "proxy_password": _secret(names, connection.proxy_password_secret_id),
    }


def row_of(connection: Connection, names: dict[int, str]) -> ConnectionRead:
    """The REST row (owner, tags and account loaded: `queries.read_options`)."""
    profile = connection.user_profile
    values = {
        "id": connection.id,
        "hashed_id": connection.hashed_id,
        "record_locator": connection.record_locator,
        "name": connection.name,
        "description": connection.description,
        "version": connection.version,
        "tags": connection.tags,
        "annotations": connection.annotations,
        "created_at": connection.created_at,
        "updated_at": connection.updated_at,
        "user_profile": {
            "user": {"username": profile.user.username, "email": profile.user.email},
            "account": {"account_number": profile.account.account_number},
        },
        **spec_of(connection, names),
    }
    if isinstance(connection, SqlConnection):
        return SqlConnectionRead.model_validate(values)
    return ApiConnectionRead.model_validate(values)


def manifest_of(kind: Kind, connection: Connection, names: dict[int, str], plugins: list[str]) -> dict[str, Any]:
    """The `describe` answer: the SDK's SAMSqlConnection / SAMApiConnection shape (camelCase), with status."""
    spec = {to_camel(key): value for key, value in spec_of(connection, names).items()}
    profile = connection.user_profile
    return {
        "apiVersion": API_VERSION,
        "kind": KINDS[kind],
        "metadata": {
            "name": connection.name,
            "description": connection.description,
            "version": connection.version,
            "tags": connection.tags,
            "annotations": connection.annotations,
        },
        "spec": {"connection": spec},
        "status": {
            "account_number": profile.account.account_number,
            "username": profile.user.username,
            "created": connection.created_at.isoformat(),
            "modified": connection.updated_at.isoformat(),
            "recordLocator": connection.record_locator,
            "dependencies": [{"kind": "SqlPlugin" if kind == "sql" else "ApiPlugin", "name": name} for name in plugins],
        },
    }


def get_row(connection: Connection) -> dict[str, Any]:
    """A row of the `get` table (keys as the brokers' columns)."""
    profile = connection.user_profile
    row: dict[str, Any] = {
        "name": connection.name,
        "description": connection.description,
        "version": connection.version,
        "username": profile.user.username,
        "accountNumber": profile.account.account_number,
        "createdAt": iso_utc(connection.created_at),
        "updatedAt": iso_utc(connection.updated_at),
    }
    if isinstance(connection, SqlConnection):
        row.update(dbEngine=connection.db_engine, hostname=connection.hostname, database=connection.database)
    else:
        row.update(baseUrl=connection.base_url, authMethod=connection.auth_method)
    return row
