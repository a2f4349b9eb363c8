"""Which cache entries a unit of work's writes make stale: derived from the rows it wrote, in one place.

Services never name an invalidation. Every session the app makes (`app.db.create_sessionmaker`) is a
`TrackedSession`, which watches what its unit of work writes:
- the ORM's changes, after each flush (new, modified and deleted objects, with the attributes that changed);
- DML statements run through `session.execute` (Core or ORM-enabled insert/update/delete), or through
  `write` (a Core statement on the session's connection, the cheaper way): the rows come from the
  statement's RETURNING, which must name the key columns of its table's rule (`KEYS`).

`RULES` maps each table whose rows feed a cache to the invalidations a changed row calls for; they are
queued on the session and published and applied by `app.db.commit` after the commit, as before (locally,
and to every other process with NOTIFY on PostgreSQL). A write of a ruled table whose rows cannot be known
(a statement without RETURNING of its keys) drops the table's caches whole, and says so in the log.

A statement may publish its written rows' keys itself (`writes(announced=True)`, built by
`notify.announcing`): every other process derives the invalidations from them with the same rules
(`invalidations_of`), and this one applies them without publishing them again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, cast

from sqlalchemy import Executable, event, inspect
from sqlalchemy.engine import Result, Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from app.caching.registry import ANNOUNCED_KEY, CACHES_KEY, PENDING_KEY, CacheRegistry, Invalidation

if TYPE_CHECKING:  # `app.reads` imports `app.db`, which imports this module
    from app.reads import Read, Reader

logger = logging.getLogger(__name__)

# The caches whose entries are rows of the tables below (each domain registers its own under this name).
ACCOUNT_CACHE = "account"
PLUGIN_CACHE = "plugin"
# The lists' rows of the plugins (`app.services.plugins.rows`): what drops a plugin's snapshot drops its row.
PLUGIN_ROW_CACHE = "plugin_row"
PLUGIN_CACHES = (PLUGIN_CACHE, PLUGIN_ROW_CACHE)
# The manifest `get` tables of plugins (`app.services.plugins.manifests`), by read scope and filters. No rule
# names it: an entry serves only while the `plugin` cache's generation, which every invalidation above moves,
# is the one its build began at.
PLUGIN_TABLE_CACHE = "plugin_table"
PRINCIPAL_CACHE = "principal"
# What a SQL or API plugin call uses (`plugin_runtime.connected`): the connection rows, and a secret's
# plaintext with its expiry and `lastAccessed` stamp, keyed by id.
SQL_CONNECTION_CACHE = "connection_sql"
API_CONNECTION_CACHE = "connection_api"
REVEALED_CACHE = "revealed"


@dataclass(frozen=True, slots=True)
class Change:
    """One row a unit of work wrote: its values (at least the rule's keys) and, for an update by the ORM,
    the attributes that changed (`None`: unknown, or every one: an insert, a delete, a DML statement)."""

    kind: Literal["insert", "update", "delete"]
    row: Mapping[Any, Any]
    changed: frozenset[str] | None = None

    def touches(self, names: Iterable[str]) -> bool:
        return self.changed is None or not self.changed.isdisjoint(names)


@dataclass(frozen=True, slots=True)
class Rule:
    keys: tuple[str, ...]  # the columns `invalidations` reads (a DML statement must return them)
    invalidations: Callable[[Change], Iterable[Invalidation]]
    caches: tuple[str, ...]  # what to drop whole when the rows are unknown
    ignored: frozenset[str] = frozenset()  # attributes whose change alone makes nothing stale


def _tag(kind: str, ident: Any) -> Invalidation:
    return Invalidation(tag=(kind, int(ident)))


def _account(change: Change) -> Iterable[Invalidation]:
    yield Invalidation(cache=ACCOUNT_CACHE, key=("id", change.row["id"]))
    yield Invalidation(cache=ACCOUNT_CACHE, key=("number", change.row["account_number"]))
    # Flags are what principals (and the snapshots showing the account's members) may be judged on.
    if change.kind == "delete" or (change.kind == "update" and change.touches(("is_active", "is_default_account"))):
        yield _tag("account", change.row["id"])


def _user(change: Change) -> Iterable[Invalidation]:
    yield _tag("user", change.row["id"])  # the user's principals and the snapshots showing them


def _profile(change: Change) -> Iterable[Invalidation]:
    yield _tag("user", change.row["user_id"])  # the user's memberships (and, on delete, what cascaded)


def _api_key(change: Change) -> Iterable[Invalidation]:
    yield Invalidation(cache=PRINCIPAL_CACHE, key=change.row["digest"])


def _plugin_by(column: str) -> Callable[[Change], Iterable[Invalidation]]:
    def invalidations(change: Change) -> Iterable[Invalidation]:
        for cache in PLUGIN_CACHES:
            yield Invalidation(cache=cache, key=int(change.row[column]))

    return invalidations


def _by_id(cache: str) -> Callable[[Change], Iterable[Invalidation]]:
    def invalidations(change: Change) -> Iterable[Invalidation]:
        yield Invalidation(cache=cache, key=int(change.row["id"]))

    return invalidations


_TIMESTAMPS = frozenset({"updated_at"})

RULES: dict[str, Rule] = {
    "account": Rule(("id", "account_number"), _account, (ACCOUNT_CACHE,), _TIMESTAMPS),
    # The last login is shown by no cache.
    "app_user": Rule(("id",), _user, (PRINCIPAL_CACHE, *PLUGIN_CACHES), _TIMESTAMPS | {"last_login"}),
    "user_profile": Rule(("user_id",), _profile, (PRINCIPAL_CACHE, *PLUGIN_CACHES), _TIMESTAMPS),
    # Being used is not being changed (`principals.LastUsedRecorder` writes outside any session anyway).
    "api_key": Rule(("digest",), _api_key, (PRINCIPAL_CACHE,), _TIMESTAMPS | {"last_used_at"}),
    "plugin_meta": Rule(("id",), _plugin_by("id"), PLUGIN_CACHES),
    "plugin_prompt": Rule(("plugin_id",), _plugin_by("plugin_id"), PLUGIN_CACHES),
    "plugin_selector": Rule(("plugin_id",), _plugin_by("plugin_id"), PLUGIN_CACHES),
    "plugin_data_static": Rule(("plugin_id",), _plugin_by("plugin_id"), PLUGIN_CACHES),
    "plugin_data_sql": Rule(("plugin_id",), _plugin_by("plugin_id"), PLUGIN_CACHES),
    "plugin_data_api": Rule(("plugin_id",), _plugin_by("plugin_id"), PLUGIN_CACHES),
    "plugin_meta_tag": Rule(("object_id",), _plugin_by("object_id"), PLUGIN_CACHES),
    "connection_sql": Rule(("id",), _by_id(SQL_CONNECTION_CACHE), (SQL_CONNECTION_CACHE,)),
    "connection_api": Rule(("id",), _by_id(API_CONNECTION_CACHE), (API_CONNECTION_CACHE,)),
    # A stamp of `lastAccessed` drops the entry too: the next use reads the new stamp.
    "secret": Rule(("id",), _by_id(REVEALED_CACHE), (REVEALED_CACHE,)),
}


def queue(session: Session, invalidations: Iterable[Invalidation]) -> None:
    """Queue invalidations on the unit of work; `app.db.commit` publishes and applies them after commit."""
    pending: list[Invalidation] = session.info.setdefault(PENDING_KEY, [])
    queued = set(pending)  # a flush of many rows queues many alike: each once, in order
    for item in invalidations:
        if item not in queued:
            queued.add(item)
            pending.append(item)


def _invalidations(rule: Rule, changes: Iterable[Change]) -> Iterable[Invalidation]:
    for change in changes:
        if change.changed is not None and change.changed <= rule.ignored:
            continue
        yield from rule.invalidations(change)


def invalidations_of(table: str, kind: str, rows: Iterable[Mapping[str, Any]]) -> list[Invalidation]:
    """What rows another process wrote make stale (its statement announced their keys: `notify.announcing`)."""
    if kind not in ("insert", "update", "delete"):
        raise ValueError(f"unknown kind of write {kind!r}")
    rule = RULES[table]
    return list(_invalidations(rule, (Change(kind, row) for row in rows)))  # type: ignore[arg-type]


def _whole(rule: Rule, table: str) -> list[Invalidation]:
    logger.warning("A write of %s without its keys (%s): its caches are dropped whole.", table, ", ".join(rule.keys))
    return [Invalidation(cache=name) for name in rule.caches]


# --- the ORM's changes ----------------------------------------------------------------------------------


def _orm_change(kind: Literal["insert", "update", "delete"], instance: object, rule: Rule) -> Change | None:
    state = inspect(instance)
    changed: frozenset[str] | None = None
    if kind == "update":
        changed = frozenset(attr.key for attr in state.attrs if attr.history.has_changes())
        if not changed:
            return None
    row = {key: state.dict.get(key) for key in rule.keys}
    if any(value is None for value in row.values()):
        return None  # not written yet (a pending object the flush skipped)
    return Change(kind, row, changed)


def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    found: list[Invalidation] = []
    for kind, instances in (("insert", session.new), ("update", session.dirty), ("delete", session.deleted)):
        for instance in instances:
            rule = RULES.get(inspect(instance).mapper.local_table.name)
            if rule is None:
                continue
            change = _orm_change(kind, instance, rule)  # type: ignore[arg-type]
            if change is not None:
                found.extend(_invalidations(rule, [change]))
    if found:
        queue(session, found)


# --- DML statements -------------------------------------------------------------------------------------

Kind = Literal["insert", "update", "delete"]


# What a statement writes of a ruled table: (kind, table, rule, the columns its rows return).
Written = tuple[Kind, str, Rule, frozenset[str]]


def writes(table: str, kind: Kind = "insert", *, announced: bool = False) -> dict[str, Any]:
    """Execution options of a SELECT whose data-modifying CTEs write `table` (one statement doing a whole
    create on PostgreSQL): its result rows are the written rows, read like a DML statement's RETURNING.

    `announced`: the statement publishes its rows' keys itself (`app.caching.notify.announcing`), so the
    commit applies their invalidations here without publishing them again.
    """
    return {WRITES_OPTION: (kind, table), ANNOUNCED_OPTION: announced}


WRITES_OPTION = "smarter_core_writes"
ANNOUNCED_OPTION = "smarter_core_announced"
# The bound parameter an announcing statement names its process with (`CacheRegistry.origin`), set at execution.
ORIGIN_PARAM = "cache_origin"


def _statement_kind(statement: Any) -> Kind | None:
    if statement.is_insert:
        return "insert"
    if statement.is_update:
        return "update"
    if statement.is_delete:
        return "delete"
    return None


@lru_cache(maxsize=64)
def _labels(statement: Any) -> frozenset[str]:
    """A `writes` SELECT's labels, once per statement (those are built once per shape and kept): not
    `column_descriptions`, which builds the ORM's entities anew on every call (a fifth of a create's CPU)."""
    return frozenset(statement.selected_columns.keys())


def _written(statement: Any, options: Mapping[str, Any]) -> Written | None:
    """What `statement` writes of a ruled table: (kind, table, rule, the columns its rows return), or None."""
    declared = options.get(WRITES_OPTION)
    if declared is not None:
        kind, table_name = declared
    else:
        kind = _statement_kind(statement)
        if kind is None:
            return None
        table_name = getattr(getattr(statement, "table", None), "name", "")
    rule = RULES.get(table_name)
    if rule is None:
        return None
    if declared is not None:
        returned = _labels(statement)
    else:
        returned = frozenset(column["name"] for column in getattr(statement, "returning_column_descriptions", ()))
    return kind, table_name, rule, returned


def _track(
    session: Session,
    written: Written,
    rows: Iterable[Mapping[Any, Any]],
    options: Mapping[str, Any],
    *,
    committed: bool,
) -> None:
    """Queue what the written `rows` make stale.

    An announced statement's invalidations were published by the statement itself: applied here at once
    when it ran in autocommit (`committed`; this process's listener ignores its own messages), else after
    the commit (`app.db.commit`), never published twice.
    """
    kind, _table, rule, _returned = written
    found = _invalidations(rule, (Change(kind, row) for row in rows))
    if not options.get(ANNOUNCED_OPTION):
        queue(session, found)
    elif committed:
        registry = session.info.get(CACHES_KEY)
        if isinstance(registry, CacheRegistry):
            registry.apply(found)
    else:
        session.info.setdefault(ANNOUNCED_KEY, []).extend(found)


def _keyed(session: Session, statement: Any, options: Mapping[str, Any]) -> Written | None:
    """What `statement` writes of a ruled table, when its rows return the rule's keys; a write without them
    drops the table's caches whole (queued here), and None is returned as for a table without a rule."""
    written = _written(statement, options)
    if written is None:
        return None
    _kind, table_name, rule, returned = written
    if not set(rule.keys) <= returned:
        queue(session, _whole(rule, table_name))
        return None
    return written


def _on_execute(state: ORMExecuteState) -> Result[Any] | None:
    written = _keyed(state.session, state.statement, state.execution_options)
    if written is None:
        return None
    if state.execution_options.get(ANNOUNCED_OPTION):
        raise RuntimeError("An announcing statement runs through `cache_rules.write`, which binds its origin.")
    # Run it here to read the rows its RETURNING gives, and hand the caller a copy of the same result.
    frozen = state.invoke_statement().freeze()
    _track(state.session, written, frozen().mappings().all(), state.execution_options, committed=False)
    return frozen()


async def write(
    session: AsyncSession, statement: Executable, values: Mapping[str, Any] | None = None
) -> Sequence[Row[Any]]:
    """Run a Core statement returning rows (a DML statement's RETURNING, a `writes` SELECT) on the unit of
    work's connection: its rows, and the invalidations they call for queued as `session.execute` queues them
    (`_on_execute`).

    Without the ORM's execution of a Core statement (its per-column entities and row loading cost a create
    more CPU than the statement's round trip), and the rows read once, not frozen and thawed. What the
    session holds unflushed is flushed first, as the session's autoflush would.
    """
    if session.new or session.dirty or session.deleted:
        await session.flush()
    connection = await session.connection()
    options = statement.get_execution_options()
    written = _keyed(session.sync_session, statement, options)
    if written is not None and options.get(ANNOUNCED_OPTION):
        registry = session.info.get(CACHES_KEY)
        # A session without the process's caches (a script's) announces under no origin, as `app.db.commit`.
        values = {**(values or {}), ORIGIN_PARAM: registry.origin if isinstance(registry, CacheRegistry) else ""}
    rows = (await connection.execute(statement, values)).all()
    if written is not None:
        committed = autocommits(connection)
        _track(session.sync_session, written, (row._mapping for row in rows), options, committed=committed)
    return rows


# The runtime's reader (`app.reads`), on the sessions that may run a whole unit of work on it (`write_alone`).
READER_KEY = "reader"


async def write_alone(session: AsyncSession, read: Read, values: Mapping[str, Any]) -> Sequence[Any] | None:
    """Run `read`'s statement, the whole unit of work (atomic by itself, announcing its rows' keys:
    `notify.announcing`), on the session's reader in autocommit: its rows, committed, and the invalidations
    they call for applied. None, with nothing run, when the session has no reader or its unit of work has
    begun (the caller then runs the statement with `write`).

    One round trip on a connection lent for that statement alone: no session connection held until the
    request's commit, no pool checkout, isolation-level switch or SQLAlchemy execution (together a third of
    a REST create's CPU). asyncpg's errors come as it raises them (`app.db_errors` reads them).
    """
    reader: Reader | None = session.info.get(READER_KEY)
    if reader is None or session.in_transaction() or session.new or session.dirty or session.deleted:
        return None
    statement = read.statement
    options = statement.get_execution_options()
    written = _keyed(session.sync_session, statement, options)
    if written is None or not options.get(ANNOUNCED_OPTION):
        raise ValueError("A statement run alone announces the keys of the rows it writes (`notify.announcing`).")
    registry = session.info.get(CACHES_KEY)
    origin = registry.origin if isinstance(registry, CacheRegistry) else ""
    rows = await reader.rows(read, {**values, ORIGIN_PARAM: origin})
    # asyncpg's records are read by column name as mappings are (`Change.row[key]`).
    _track(session.sync_session, written, cast("list[Mapping[str, Any]]", rows), options, committed=True)
    return rows


def autocommits(connection: AsyncConnection) -> bool:
    """Each statement on `connection` commits as it returns (`app.db.single_statement`)."""
    sync = connection.sync_connection
    return sync is not None and sync.get_execution_options().get("isolation_level") == "AUTOCOMMIT"


class TrackedSession(Session):
    """The app's sessions: their writes queue the cache invalidations they call for (`RULES`)."""


event.listen(TrackedSession, "after_flush", _after_flush)
event.listen(TrackedSession, "do_orm_execute", _on_execute, retval=True)
