"""The `plugin_row` cache: each plugin's flat row of the lists, as JSON, and nothing else.

A list shows rows only, so it needs neither a plugin's parts nor its view: a page's or a complete list's
misses are read without the parts (`statements.ROW`) and kept as their serialised bytes, a fifth of a
snapshot's memory (a complete list of ten thousand plugins kept every view with its parts before). Entries
are tagged with the owner's user and account, as the snapshots are, and every write that drops a plugin's
snapshot drops its row (`app.caching.rules.PLUGIN_CACHES`). The scope was applied by the query that read
the list's ids, so a row needs no permission check.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from app.caching.registry import CacheRegistry, SingleFlightCache
from app.caching.registry import Tag as CacheTag
from app.caching.rules import PLUGIN_ROW_CACHE
from app.reads import Reader
from app.services.plugins.statements import ROW_NAMES, rows_read
from app.services.plugins.views import row_json

_ID, _ACCOUNT, _OWNER = (ROW_NAMES.index(name) for name in ("id", "account_id", "owner_user_id"))


@dataclass(frozen=True, slots=True)
class PluginRow:
    """A plugin's list row as JSON, with the ids its cache tags name.

    In two pieces (`views.row_json`): the plugin's own fields, and the end every row of its owner shares (a
    sixth of a row, and it kept each row's bytes above the small-object size).
    """

    account_id: int
    owner_user_id: int
    own: bytes
    end: bytes


def _row_tags(row: PluginRow) -> Iterable[CacheTag]:
    yield ("user", row.owner_user_id)
    yield ("account", row.account_id)


def row_cache(caches: CacheRegistry) -> SingleFlightCache[int, PluginRow]:
    return caches.register(PLUGIN_ROW_CACHE, tags_of=_row_tags)


async def row_bodies(reader: Reader, caches: CacheRegistry, plugin_ids: Sequence[int]) -> list[bytes]:
    """The rows of a list's plugins as JSON, in the list's order: cached ones as they are, the rest in one query
    (shared by concurrent lists missing the same rows, `SingleFlightCache.get_many`).

    A plugin deleted since the list's ids were read is left out.
    """

    async def load(missing: list[int]) -> dict[int, PluginRow]:
        rows = await rows_read(reader.engine.dialect.name).rows(reader, {"plugin_ids": missing})
        return {row[_ID]: PluginRow(row[_ACCOUNT], row[_OWNER], *row_json(row)) for row in rows}

    found = await row_cache(caches).get_many(plugin_ids, load)
    return [found[plugin_id].own + found[plugin_id].end for plugin_id in plugin_ids if plugin_id in found]
