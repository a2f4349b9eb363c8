"""Opening one database connection of a SQL connection, under the network policy: the `async_creator` of its
engine (asyncpg, aiomysql, aiosqlite), which resolves the host, checks the address and connects to that very
address; TLS settings; SQLite files; driver messages made safe to show."""

from __future__ import annotations

import asyncio
import os
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg

from app.models import SqlConnection
from app.network import NetworkPolicy, NetworkRefused, UpstreamFailed, checked_address
from app.schemas.connections import DEFAULT_PORTS
from app.services.connections.rules import engine_family

# What the target database sees as the client (PostgreSQL's `application_name`).
APPLICATION_NAME = "smarter-core-plugin"
_MASK = "********"


def safe_detail(exc: BaseException, secret: str | None) -> str:
    """The first line of an error's message (its class name when empty), the secret masked should a driver
    ever echo it."""
    lines = str(exc).strip().splitlines()
    message = lines[0] if lines else type(exc).__name__
    return message.replace(secret, _MASK) if secret else message


@dataclass(frozen=True, slots=True)
class Tls:
    """A connection's TLS settings, copied from its row when its engine is built."""

    use_ssl: bool
    ca: str | None
    cert: str | None
    key: str | None


def ssl_context(tls: Tls) -> ssl.SSLContext | None:
    """`useSsl`: with `sslCa`, the chain is verified against it (libpq's verify-ca: the address connected to is
    the checked IP, not the name); without, the link is encrypted only. `sslCert`/`sslKey`: a client certificate.
    Unusable PEM text is an `UpstreamFailed` (the settings are wrong, never a 500)."""
    if not tls.use_ssl:
        return None
    try:
        context = ssl.create_default_context(cadata=tls.ca) if tls.ca else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        if not tls.ca:
            context.verify_mode = ssl.CERT_NONE
        if tls.cert:
            # The ssl module loads a client certificate from files only: written for the call, then removed.
            with tempfile.TemporaryDirectory() as directory:
                cert = Path(directory) / "cert.pem"
                cert.write_text(tls.cert)
                key = None
                if tls.key:
                    key = Path(directory) / "key.pem"
                    key.touch(mode=0o600)
                    key.write_text(tls.key)
                context.load_cert_chain(cert, key)
    except (ssl.SSLError, ValueError, OSError) as exc:
        raise UpstreamFailed("The connection's SSL certificate, key or CA cannot be used.") from exc
    return context


def sqlite_path(database: str, own: str | None) -> str:
    """The real path of an existing SQLite file that is not the service's own database."""
    path = os.path.realpath(database)
    if path == own:
        raise NetworkRefused("This is the service's own database: no connection may open it.")
    if not os.path.isfile(path):
        raise UpstreamFailed(f"The SQLite database file {database!r} does not exist.")
    return path


def creator(
    connection: SqlConnection, password: str | None, policy: Callable[[], NetworkPolicy], own: str | None
) -> Callable[[], Awaitable[Any]]:
    """The engine's `async_creator`: every new DBAPI connection is checked against the policy in force then
    (`policy()`), at the address just resolved. The row's values are copied now (the engine outlives the
    request that built it)."""
    family = engine_family(connection.db_engine)
    host, database, user, timeout = connection.hostname, connection.database, connection.username, connection.timeout
    port = connection.port or DEFAULT_PORTS.get(family, 0)
    tls = Tls(connection.use_ssl, connection.ssl_ca, connection.ssl_cert, connection.ssl_key)

    async def create() -> Any:
        if family == "sqlite":
            if not policy().allow_all:
                raise NetworkRefused(
                    "SQLite files are local to this server: the network policy "
                    "(SMARTER_CORE_PLUGIN_NETWORKS=public) refuses them."
                )
            path = await asyncio.to_thread(sqlite_path, database, own)
            # Read-only: a plugin never writes, and no file is ever created by opening it.
            return await aiosqlite.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout)
        address = await checked_address(policy(), host, port)
        context = await asyncio.to_thread(ssl_context, tls) if tls.use_ssl else None  # no thread for nothing
        if family == "postgresql":
            return await asyncpg.connect(
                host=address,
                port=port,
                user=user or None,
                password=password,
                database=database,
                timeout=timeout,
                ssl=context or False,
                server_settings={"application_name": APPLICATION_NAME},
            )
        import aiomysql  # with PyMySQL and `cryptography`, ~10 MiB: imported by the first MySQL connection

        return await aiomysql.connect(
            host=address,
            port=port,
            user=user or "",
            password=password or "",
            db=database or None,
            connect_timeout=timeout,
            ssl=context,
            autocommit=False,
        )

    return create


def engine_url(db_engine: str) -> str:
    """The SQLAlchemy URL of the engine's dialect (the connections themselves come from `creator`)."""
    family = engine_family(db_engine)
    return {"postgresql": "postgresql+asyncpg://", "mysql": "mysql+aiomysql://"}.get(family, "sqlite+aiosqlite://")
