"""What the SQL and API classes' runtimes share: their data, tool schema and description, test arguments,
the connection a call uses with its secret, and JSON-safe values.

A call reads its connection (of the plugin's own account) and reveals its secret in a short unit of work of
its own, committed before anything is sent to the database or API: no transaction of this service is held
open while an upstream answers. Both are cached per process (`cache_rules`: a write of the connection or
the secret drops its entry, here and through NOTIFY elsewhere; the TTL is the backstop). A cached secret is
used only while it has not expired and its `lastAccessed` stamp is not due, so a use that must stamp (at
most once a minute) still goes to the database; the plaintext lives in memory only, as in the engine that
the pools keep connected with it.
"""

from __future__ import annotations

import base64
import math
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import select

from app.caching.rules import API_CONNECTION_CACHE, REVEALED_CACHE, SQL_CONNECTION_CACHE
from app.db import commit
from app.errors import Conflict
from app.models import ApiConnection, SqlConnection
from app.services.plugin_runtime.kinds import CallContext, JsonObject, parameter_descriptions
from app.services.plugin_runtime.schemas import declared_parameters_schema
from app.services.plugins.connected_views import tool_description
from app.services.plugins.statements import DATA_PARTS
from app.services.plugins.views import PluginView
from app.services.secrets.reveal import Revealed, use

C = TypeVar("C", SqlConnection, ApiConnection)

NO_DATA = "This {kind} has no data yet; PUT its data (with a connection) first."
NOT_CONFIGURED = "This server cannot run {kind} calls here (no connection pools configured)."
NO_CONNECTION = "The plugin's connection no longer exists in its account."


def data_of(view: PluginView) -> dict[str, Any] | None:
    """The plugin's SQL or API data (the part of its class), None while it has none."""
    data: dict[str, Any] | None = getattr(view, DATA_PARTS[view.plugin_class])
    return data


def required_data(view: PluginView, kind: str) -> dict[str, Any]:
    data = data_of(view)
    if data is None:
        raise Conflict(NO_DATA.format(kind=kind))
    return data


def input_schema(view: PluginView) -> JsonObject:
    data = data_of(view)
    return declared_parameters_schema(data["parameters"] if data is not None else None)


def description(view: PluginView) -> str:
    return tool_description(view.description, data_of(view))


def search_text(view: PluginView) -> list[str]:
    data = data_of(view)
    return parameter_descriptions(data["parameters"]) if data is not None else []


def test_arguments(view: PluginView) -> JsonObject:
    """The plugin's `testValues` as arguments (`[{name, value}]` -> `{name: value}`)."""
    data = data_of(view)
    return {item["name"]: item.get("value") for item in (data or {}).get("test_values") or []}


def with_defaults(view: PluginView, arguments: JsonObject) -> JsonObject:
    """The arguments, with each declared parameter's `default` where the call left it out (else None)."""
    data = data_of(view) or {}
    values: JsonObject = {}
    for parameter in data.get("parameters") or []:
        name = parameter["name"]
        values[name] = arguments[name] if name in arguments else parameter.get("default")
    return values


async def plugin_connection(
    view: PluginView, context: CallContext, model: type[C], secret_column: str, kind: str
) -> tuple[dict[str, Any], C, str | None]:
    """What a call of the plugin needs first: its data, its connection and the secret's plaintext; 409 when it
    has no data yet or this server has no connection pools."""
    data = required_data(view, kind)
    if context.pools is None:
        raise Conflict(NOT_CONFIGURED.format(kind=kind))
    connection, secret = await connection_and_secret(
        context, model, data["connection_id"], view.account_id, secret_column, kind
    )
    return data, connection, secret


async def connection_and_secret(
    context: CallContext, model: type[C], connection_id: int, account_id: int, secret_column: str, kind: str
) -> tuple[C, str | None]:
    """The plugin's connection (of its own account) and its secret's plaintext (None without one).

    An expired or missing secret is a 409 (`secrets.reveal`). Revealing stamps `lastAccessed`, so that unit
    of work is a writer's, committed here, before the call goes out.
    """
    if context.sessionmaker is None or context.writer_sessionmaker is None or context.cipher is None:
        raise Conflict(NOT_CONFIGURED.format(kind=kind))
    sessionmaker, writer_sessionmaker, cipher = context.sessionmaker, context.writer_sessionmaker, context.cipher

    async def load_connection() -> C | None:
        async with sessionmaker() as session:
            found: C | None = (
                await session.execute(select(model).where(model.id == connection_id))
            ).scalar_one_or_none()
        return found  # detached, every column loaded: read-only from here on

    cache_name = SQL_CONNECTION_CACHE if model is SqlConnection else API_CONNECTION_CACHE
    connection: C | None = await context.caches.register(cache_name).get(connection_id, load_connection)
    if connection is None or connection.account_id != account_id:
        raise Conflict(NO_CONNECTION)
    secret_id: int | None = getattr(connection, secret_column)
    if secret_id is None:
        return connection, None
    now = datetime.now(UTC)
    secrets = context.caches.register(REVEALED_CACHE)
    cached: Revealed | None = secrets.peek(secret_id)
    if cached is not None and cached.usable(now):
        return connection, cached.value

    async def load_secret() -> Revealed:
        async with writer_sessionmaker() as session:
            revealed = await use(session, cipher, secret_id, now=now)
            await commit(session)  # a stamp's invalidation drops what this load returns: the next one stores
        return revealed

    if cached is not None:
        secrets.invalidate(secret_id)
    revealed: Revealed | None = await secrets.get(secret_id, load_secret)
    assert revealed is not None  # the loader returns a value or raises
    return connection, revealed.value


def json_safe(value: Any) -> Any:
    """A database value as JSON: decimals as numbers, timestamps ISO-8601, bytes base64, the rest as text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        return int(value) if value == value.to_integral_value() and abs(value) < 2**53 else float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(item) for item in value]
    return str(value)
