"""What a database error means: a constraint the client hit (409/422), the database being unavailable
(503, retry), or a value the database refused (422). Read from SQLAlchemy's wrappers and asyncpg's own
errors alike, by SQLSTATE where there is one, from SQLite's messages where there is not.
"""

from __future__ import annotations

import re
from typing import Any, TypeAlias

import asyncpg
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.errors import AppError, Conflict, FieldError, Unprocessable
from app.models.constraints import UNIQUE_MESSAGES, unique_columns, unique_constraints
from app.text import to_camel_case

# --- integrity errors --------------------------------------------------------------------------------

_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)")
_SQLITE_CHECK = re.compile(r"CHECK constraint failed: (\w+)")


# A constraint violation as SQLAlchemy wraps it, or as asyncpg raises it (a statement run by `app.reads`).
ConstraintViolation: TypeAlias = IntegrityError | asyncpg.IntegrityConstraintViolationError


def constraint_of(exc: ConstraintViolation) -> tuple[str, str | None]:
    """('unique'|'foreign_key'|'check'|'not_null'|'other', constraint name) for both drivers."""
    orig: Any = exc if isinstance(exc, asyncpg.IntegrityConstraintViolationError) else exc.orig
    cause = getattr(orig, "__cause__", None) or orig
    sqlstate = getattr(cause, "sqlstate", None) or getattr(orig, "sqlstate", None)
    if sqlstate:
        name = getattr(cause, "constraint_name", None)
        kind = {"23505": "unique", "23503": "foreign_key", "23514": "check", "23502": "not_null"}.get(sqlstate, "other")
        return kind, name
    message = str(orig)
    if match := _SQLITE_UNIQUE.search(message):
        pairs = [part.strip().split(".", 1) for part in match.group(1).split(",")]
        table = pairs[0][0]
        columns = tuple(p[1] for p in pairs if len(p) == 2)
        return "unique", unique_constraints().get((table, columns))
    if match := _SQLITE_CHECK.search(message):
        return "check", match.group(1)
    if "FOREIGN KEY constraint failed" in message:
        return "foreign_key", None
    if "NOT NULL constraint failed" in message:
        return "not_null", None
    return "other", None


def classify_integrity_error(exc: ConstraintViolation) -> AppError:
    kind, name = constraint_of(exc)
    if kind == "unique":
        field, sentence = UNIQUE_MESSAGES.get(name or "", ("", "This conflicts with an existing record."))
        if not field and name:
            # The constraint's last column (`uq_api_key_key_id` -> keyId), not the name's last word (`id`).
            columns = unique_columns(name)
            field = to_camel_case(columns[-1]) if columns else ""
        errors = [FieldError(loc=["body", field], msg=sentence, type="unique")] if field else None
        return Conflict(sentence, errors=errors)
    if kind == "foreign_key":
        return Unprocessable("A record this refers to does not exist (or was just deleted).")
    if kind == "check":
        return Unprocessable(f"A value is outside its allowed range ({name or 'check constraint'}).")
    if kind == "not_null":
        return Unprocessable("A required value is missing.")
    return Conflict("This conflicts with the current state of the data.")


# --- database availability ----------------------------------------------------------------------------


# SQLSTATE classes that mean "not now": 08 connection exception, 40 transaction rollback (deadlock,
# serialization failure: a concurrent writer won), 53 insufficient resources (too many connections),
# 57 operator intervention (shutdown, starting up, statement timeout).
_RETRYABLE_CLASSES = frozenset({"08", "40", "53", "57"})


def is_database_unavailable(exc: BaseException) -> bool:
    """Connection loss, pool exhaustion, timeouts and locks: the client may retry; never a 500.

    Errors come wrapped by SQLAlchemy, or as asyncpg raised them (the hot reads of `app.reads`, a pool
    checkout that failed to connect): the SQLSTATE decides for both.
    """
    if isinstance(exc, PoolTimeoutError | InterfaceError | OperationalError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if _driver_refused_argument(exc):
        return False  # the client's value (`is_refused_value`)
    if isinstance(exc, asyncpg.InterfaceError) or is_connection_lost(exc):
        return True  # the driver's "connection is closed", or the session gone under a statement
    if _sqlstate(exc)[:2] in _RETRYABLE_CLASSES:
        return True
    return isinstance(exc, OSError | TimeoutError | ConnectionError)


# The server has closed, or is closing, the session: admin shutdown, crash shutdown, cannot connect now.
_SHUTDOWN_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


def is_connection_lost(exc: BaseException) -> bool:
    """asyncpg's session is gone, and with it, likely, every connection to the same server."""
    if isinstance(exc, asyncpg.PostgresConnectionError | OSError):
        return True  # class 08 (connection exception) included: "closed in the middle of operation"
    if isinstance(exc, asyncpg.InternalClientError):
        # The protocol is in a state no statement of ours left it in ("cannot switch to state ..."): the
        # server's FATAL arrived while the connection sat idle (a terminated backend), and the close that
        # follows is not yet seen.
        return True
    return getattr(exc, "sqlstate", None) in _SHUTDOWN_SQLSTATES


def _sqlstate(exc: BaseException) -> str:
    """The driver's SQLSTATE, wherever it is (on asyncpg's error; SQLAlchemy's wraps it twice), or ''."""
    for candidate in (exc, getattr(exc, "orig", None), exc.__cause__):
        for error in (candidate, getattr(candidate, "__cause__", None)):
            sqlstate = getattr(error, "sqlstate", None)
            if isinstance(sqlstate, str):
                return sqlstate
    return ""


def is_refused_value(exc: BaseException) -> bool:
    """SQLSTATE class 22 (data exception): PostgreSQL refuses NUL in text and JSONB, out-of-range numbers...

    asyncpg reports most of these as a generic DBAPIError, so the SQLSTATE decides, not the class.
    """
    return isinstance(exc, DataError) or _driver_refused_argument(exc) or _sqlstate(exc).startswith("22")


def _driver_refused_argument(exc: BaseException) -> bool:
    """asyncpg could not encode an argument (out of range for its type, say): its client-side DataError,
    which is both an InterfaceError and a ValueError (`asyncpg.DataError` is the server's class 22)."""
    return isinstance(exc, asyncpg.InterfaceError) and isinstance(exc, ValueError)


# Errors that are an outcome rather than a bug: the database or its driver failing, as SQLAlchemy wraps
# it or as asyncpg raises it in `app.reads`. `app.http_errors` answers each of them (never a 500).
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    DBAPIError,
    PoolTimeoutError,
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)
