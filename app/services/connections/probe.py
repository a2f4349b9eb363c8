"""The `test/` action: open the connection now and say whether it worked (SQL: `SELECT 1`; API: `HEAD`, then
`GET` when `HEAD` is not answered with success), within the connection's timeout.

Every failure is an answer (`ok: false` and a sentence without secrets), never an error status: the
request was fine, the connection is what failed. An expired or missing secret is a 409 (`reveal`).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import ApiConnection, SqlConnection
from app.network import UpstreamFailed, UpstreamTimeout
from app.schemas.connections import ConnectionTestResult
from app.services.connections.pools import ConnectionPools
from app.services.connections.queries import get_writable
from app.services.connections.rules import Kind
from app.services.principals import Principal
from app.services.secrets import SecretCipher, reveal

# API answers that mean the credentials were refused: the connection does not work as configured.
_REFUSED = {401: "Unauthorized", 403: "Forbidden", 407: "Proxy Authentication Required"}


async def _secret(session: AsyncSession, cipher: SecretCipher, secret_id: int | None) -> str | None:
    return None if secret_id is None else await reveal(session, cipher, secret_id, now=datetime.now(UTC))


async def _probe_sql(pools: ConnectionPools, connection: SqlConnection, password: str | None) -> str | None:
    """None when `SELECT 1` answered; else why not."""
    try:
        async with pools.sql_connection(connection, password) as conn:
            await conn.execute(text("SELECT 1"))
    except (UpstreamFailed, UpstreamTimeout) as exc:
        return exc.detail
    except DBAPIError as exc:
        return f"The database failed: {type(exc.orig).__name__}."
    except SQLAlchemyError as exc:
        return f"The database failed: {type(exc).__name__}."
    return None


async def _probe_api(pools: ConnectionPools, connection: ApiConnection, secret: str | None) -> str | None:
    """None when the base URL answered (`HEAD`, or `GET` after an unsuccessful `HEAD`) without refusing the
    credentials or failing itself (5xx); else why not. Redirects are followed, the policy checked on each hop."""
    try:
        response = await pools.api_request(connection, secret, "HEAD", connection.base_url, redirects="any")
        if response.status_code >= 400:
            response = await pools.api_request(connection, secret, "GET", connection.base_url, redirects="any")
    except (UpstreamFailed, UpstreamTimeout) as exc:
        return exc.detail
    status = response.status_code
    if status in _REFUSED:
        return f"The API answered {status} {_REFUSED[status]}: check the connection's credentials."
    if status >= 500:
        return f"The API answered {status}: it failed on its side."
    return None


async def test_connection(
    session: AsyncSession,
    principal: Principal,
    pools: ConnectionPools,
    cipher: SecretCipher,
    kind: Kind,
    connection_id: int,
) -> ConnectionTestResult:
    """Needs the ownership scope (the test spends the connection's secrets): 404 unreadable, 403 not yours."""
    connection = await get_writable(session, principal, kind, connection_id)
    started = time.perf_counter()
    error: str | None
    if isinstance(connection, SqlConnection):
        error = await _probe_sql(pools, connection, await _secret(session, cipher, connection.password_secret_id))
    else:
        error = await _probe_api(pools, connection, await _secret(session, cipher, connection.api_key_secret_id))
    latency = round((time.perf_counter() - started) * 1000, 1)
    return ConnectionTestResult(ok=error is None, latency_ms=latency, error=error)
