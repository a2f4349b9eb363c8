"""The plugin presenter: a plugin's view (decoded by column name) and every answer built from it.

One view, four shapes: the flat row of the lists (`PluginRead`), the REST detail (`PluginDetail`), the
manifest (`PluginManifestRead`) and a row of the manifest `get` table; a part's response too. Bodies are
built as plain dicts of JSON values: their values come from the database, and the tests hold every shape
against its schema (building the schema's models and dumping them cost more than the rest of a load).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from functools import lru_cache
from typing import Any

from pydantic_core import from_json, to_json

from app.identifiers import hashed_id, record_locator
from app.models.plugin import PLUGIN_KINDS
from app.schemas.plugin_data import ApiDataRead, SqlDataRead
from app.schemas.plugins import API_VERSION, DataRead, PromptRead, SelectorRead
from app.services.plugins.connected_views import connected_spec
from app.services.plugins.statements import (
    PART_KEYS,
    PARTS,
    PLUGIN_COLUMNS,
    ROW_NAMES,
    TAG_SEPARATOR,
    VIEW_NAMES,
)
from app.text import iso_utc


@dataclass(frozen=True, slots=True)
class PluginView:
    """One plugin with its owner, tags and parts (the fields of `statements.PLUGIN_COLUMNS`, typed).

    A part is a dict of its columns, None when the plugin has none.
    """

    id: int
    account_id: int
    owner_user_id: int
    name: str
    description: str
    version: str
    tags: list[str]
    annotations: list[dict[str, Any]]
    plugin_class: str
    created_at: datetime
    updated_at: datetime
    username: str
    email: str
    account_number: str
    prompt: dict[str, Any] | None
    selector: dict[str, Any] | None
    data: dict[str, Any] | None
    sql_data: dict[str, Any] | None
    api_data: dict[str, Any] | None


# The dataclass types what the statement defines: the same names, or the import fails.
assert {f.name for f in fields(PluginView)} == {*PLUGIN_COLUMNS, *PARTS}, "PluginView and PLUGIN_COLUMNS differ"


def view_of(row: Iterable[Any], *, shared: bool = True) -> PluginView:
    """A row of `statements.VIEW` (SQLAlchemy's or the driver's), read by its columns' labels (`shared`: as
    `view_from`)."""
    return view_from(dict(zip(VIEW_NAMES, row, strict=True)), shared=shared)


# JSON values many plugins repeat (a parameters schema, annotations, search terms), one shared copy each: views
# live in the `plugin` cache by the thousand and are read-only already (every reader of a cached view shares it).
# The tables hold the values most recently read (what repeats is read again and stays): a thousand each, as a
# full table of 4,096 kept ~1 MiB of one-off values (every plugin's own search terms) and their JSON keys.
_SHARED = 1024
_shared_json = lru_cache(maxsize=_SHARED)(from_json)
# Strings too (an owner's name and email, a model, a provider), through a bounded table of recent ones (`str` of a
# str is the str itself, so the table hands back the first equal one it holds): `sys.intern` kept every name and
# description ever read in the interpreter's table, which doubled (~2 MiB) when a selection index was built.
_shared_str = lru_cache(maxsize=_SHARED)(str)


def _shared(value: Any) -> Any:
    """One copy of a repeated value: strings through `_shared_str`, JSON containers through `_shared_json`."""
    if isinstance(value, str):
        return _shared_str(value)
    if isinstance(value, dict | list) and value:
        return _shared_json(to_json(value))
    return value


def view_from(values: Mapping[Any, Any], *, shared: bool = True) -> PluginView:
    """The view in `values`, a `statements.VIEW` row as a mapping of its labels (extra labels ignored).

    `shared=False` for a view presented once and dropped (a create's answer): its values are not worth
    sharing with the cached views'.
    """
    share = _shared if shared else _itself
    plugin = {name: share(values[name]) for name in PLUGIN_COLUMNS}
    plugin["tags"] = tag_list(plugin["tags"])
    for part, keys in PART_KEYS.items():
        columns = {key: share(values[f"{part}__{key}"]) for key in keys}
        plugin[part] = None if columns["id"] is None else columns
    return PluginView(**plugin)


def _itself(value: Any) -> Any:
    return value


def tag_list(aggregated: str | None) -> list[str]:
    """The aggregated tags column as the sorted list every response shows."""
    return sorted(aggregated.split(TAG_SEPARATOR)) if aggregated else []


# Pure functions of the id, and reads with caches off show the same ids over and over. A thousand: the
# bodies that show them are cached anyway, and every plugin ever written or listed (tens of thousands) cost
# ~180 bytes an entry in each of the two caches (a complete list filled tables of 4,096: ~1.4 MiB).
_IDENTITIES = 1024
_hashed_id = lru_cache(maxsize=_IDENTITIES)(hashed_id)


@lru_cache(maxsize=_IDENTITIES)
def _record_locator(id_: int) -> str:
    return record_locator("PluginMeta", id_)


def row_of(plugin: PluginView) -> dict[str, Any]:
    """The plugin's flat row (`PluginRead`, the SDK's `Plugin`), camelCase, for lists and details."""
    return {
        "id": plugin.id,
        "hashedId": _hashed_id(plugin.id),
        "recordLocator": _record_locator(plugin.id),
        "createdAt": plugin.created_at,
        "updatedAt": plugin.updated_at,
        "name": plugin.name,
        "description": plugin.description,
        "version": plugin.version,
        "tags": plugin.tags,
        "annotations": plugin.annotations,
        "userProfile": {
            "user": {"username": plugin.username, "email": plugin.email},
            "account": {"accountNumber": plugin.account_number},
        },
        "pluginClass": plugin.plugin_class,
        "kind": PLUGIN_KINDS[plugin.plugin_class],
    }


# Where a flat row's owner begins: the last such key of the row (annotations may hold one too, but after the
# real one come only the owner's strings, where every quote is escaped, and constant keys).
_OWNER_KEY = b',"userProfile":'
# The ends of rows (owner and class), one shared copy each: every plugin of an owner ends its row the same way.
_shared_end = lru_cache(maxsize=_SHARED)(bytes)


def row_json(row: Iterable[Any]) -> tuple[bytes, bytes]:
    """The flat row as JSON, from a row of `statements.ROW` (the plugin's own columns and owner: its parts are
    not read, and the row shows none), in two pieces: up to its owner, and the rest (owner and class), which
    the rows of one owner share; their concatenation is the row."""
    values: dict[str, Any] = dict(zip(ROW_NAMES, row, strict=True))
    values["tags"] = tag_list(values["tags"])
    values.update(dict.fromkeys(PARTS))
    own, owner_key, end = to_json(row_of(PluginView(**values))).rpartition(_OWNER_KEY)
    return own, _shared_end(owner_key + end)


def manifest_body(plugin: PluginView) -> dict[str, Any]:
    """The plugin's manifest (`PluginManifestRead`: metadata, spec, status) as camelCase JSON values."""
    prompt, selector, data = plugin.prompt, plugin.selector, plugin.data
    parts = [p for p in (prompt, selector, data, plugin.sql_data, plugin.api_data) if p is not None]
    return {
        "apiVersion": API_VERSION,
        "kind": PLUGIN_KINDS[plugin.plugin_class],
        "metadata": {
            "name": plugin.name,
            "description": plugin.description,
            "version": plugin.version,
            "tags": plugin.tags,
            "annotations": plugin.annotations,
            "pluginClass": plugin.plugin_class,
        },
        "spec": {
            "selector": {
                "directive": selector["directive"],
                "searchTerms": list(selector["search_terms"]) if selector["directive"] == "search_terms" else None,
            }
            if selector
            else None,
            "prompt": {
                "provider": prompt["provider"],
                "systemRole": prompt["system_role"],
                "model": prompt["model"],
                "temperature": prompt["temperature"],
                "maxTokens": prompt["max_completion_tokens"],
            }
            if prompt
            else None,
            **(
                connected_spec(plugin.plugin_class, plugin.sql_data, plugin.api_data)
                if plugin.plugin_class != "static"
                else {
                    "data": {
                        "description": data["description"],
                        "staticData": data["static_data"] or {},
                        "parameters": data["parameters"],
                    }
                    if data
                    else None
                }
            ),
        },
        "status": {
            "recordLocator": _record_locator(plugin.id),
            "created": plugin.created_at,
            "modified": max([plugin.updated_at, *(p["updated_at"] for p in parts)]),
            "accountNumber": plugin.account_number,
            "username": plugin.username,
            "dependencies": [],
        },
    }


def manifest_json(plugin: PluginView) -> dict[str, Any]:
    """The plugin's manifest as plain JSON values (timestamps as text): describe's and apply's `data`.

    Through pydantic-core's JSON, the same text as every other body (building `PluginManifestRead` to dump
    it again cost more than the apply's statement).
    """
    values: dict[str, Any] = from_json(to_json(manifest_body(plugin)))
    return values


def detail_of(plugin: PluginView) -> dict[str, Any]:
    """The REST detail (`PluginDetail`): the flat row and the manifest sections in one object."""
    return {**row_of(plugin), **manifest_body(plugin)}


def detail_json(plugin: PluginView) -> bytes:
    """The REST detail as JSON: the answer of a create or a clone (a read's is kept in its snapshot)."""
    return to_json(detail_of(plugin))


_PART_READS: dict[str, type[PromptRead | SelectorRead | DataRead | SqlDataRead | ApiDataRead]] = {
    "prompt": PromptRead,
    "selector": SelectorRead,
    "data": DataRead,
    "sql_data": SqlDataRead,
    "api_data": ApiDataRead,
}


def part_body(part: str, row: Mapping[str, Any]) -> bytes:
    """A part's REST response (`PromptRead`, `SelectorRead` or `DataRead`) as JSON."""
    identity = {"hashed_id": _hashed_id(row["id"]), "record_locator": PARTS[part].locator_of(row["id"])}
    read = _PART_READS[part].model_validate({**row, **identity})
    return read.__pydantic_serializer__.to_json(read, by_alias=True)


def get_row(plugin: PluginView) -> dict[str, Any]:
    """A row of the manifest `get` table (the `Plugin` broker's columns)."""
    return {
        "name": plugin.name,
        "description": plugin.description,
        "pluginClass": plugin.plugin_class,
        "version": plugin.version,
        "email": plugin.email,
        "username": plugin.username,
        "accountNumber": plugin.account_number,
        "createdAt": iso_utc(plugin.created_at),
        "updatedAt": iso_utc(plugin.updated_at),
    }
