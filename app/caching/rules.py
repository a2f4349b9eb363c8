"""Which cache entries a unit of work's writes make stale: derived from the rows it wrote, in one place.

Services never name an invalidation. Every session the app makes (`app.db.create_sessionmaker`) is a
`TrackedSession`, which watches what its unit of work writes:
- the ORM's changes, after each flush (new, modified and deleted objects, with the attributes that changed);
- DML statements run through `session.execute` (Core or ORM-enabled insert/update/delete): the rows come
  from the statement's RETURNING, which must name the key columns of its table's rule (`KEYS`).

`RULES` maps each table whose rows feed a cache to the invalidations a changed row calls for; they are
queued on the session and published and applied by `app.db.commit` after the commit, as before (locally,
and to every other process with NOTIFY on PostgreSQL). A write of a ruled table whose rows cannot be known
(a statement without RETURNING of its keys) drops the table's caches whole, and says so in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import event, inspect
from sqlalchemy.engine import Result
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from app.caching.registry import PENDING_KEY, Invalidation

logger = logging.getLogger(__name__)

# The caches whose entries are rows of the tables below (each domain registers its own under this name).
ACCOUNT_CACHE = "account"
PLUGIN_CACHE = "plugin"
# The lists' rows of the plugins (`app.services.plugins.rows`): what drops a plugin's snapshot drops its row.
PLUGIN_ROW_CACHE = "plugin_row"
PLUGIN_CACHES = (PLUGIN_CACHE, PLUGIN_ROW_CACHE)
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


def _statement_kind(state: ORMExecuteState) -> Literal["insert", "update", "delete"] | None:
    if state.is_insert:
        return "insert"
    if state.is_update:
        return "update"
    if state.is_delete:
        return "delete"
    return None


def writes(table: str, kind: Literal["insert", "update", "delete"] = "insert") -> dict[str, Any]:
    """Execution options of a SELECT whose data-modifying CTEs write `table` (one statement doing a whole
    create on PostgreSQL): its result rows are the written rows, read like a DML statement's RETURNING."""
    return {WRITES_OPTION: (kind, table)}


WRITES_OPTION = "smarter_core_writes"


def _on_execute(state: ORMExecuteState) -> Result[Any] | None:
    kind = _statement_kind(state)
    table_name = getattr(getattr(state.statement, "table", None), "name", "")
    declared = state.execution_options.get(WRITES_OPTION)
    if kind is None and declared is not None:
        kind, table_name = declared
    if kind is None:
        return None
    rule = RULES.get(table_name)
    if rule is None:
        return None
    if declared is not None:
        returned = {column["name"] for column in state.statement.column_descriptions}  # type: ignore[attr-defined]
    else:
        returned = {column["name"] for column in getattr(state.statement, "returning_column_descriptions", ())}
    if not set(rule.keys) <= returned:
        queue(state.session, _whole(rule, table_name))
        return None
    # Run it here to read the rows its RETURNING gives, and hand the caller a copy of the same result.
    frozen = state.invoke_statement().freeze()
    rows = frozen().mappings().all()
    queue(state.session, _invalidations(rule, (Change(kind, row) for row in rows)))
    return frozen()


class TrackedSession(Session):
    """The app's sessions: their writes queue the cache invalidations they call for (`RULES`)."""


event.listen(TrackedSession, "after_flush", _after_flush)
event.listen(TrackedSession, "do_orm_execute", _on_execute, retval=True)
