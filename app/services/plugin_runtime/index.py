"""The matching index of one account's plugins, cached and dropped with the plugins' snapshots.

An index holds what a selection reads of every plugin of the account: its id, name, class, directive, search
terms (in a `words.TermMatcher`), its `llm` document (in a `bm25.Corpus`) and its prompt settings. Not its
snapshot: an account of twenty thousand plugins would keep every view with its parts (~4 KiB each) for the
few a selection or a tool call shows; their snapshots come from the `plugin` cache when they are shown
(`current_snapshots`), and building the index caches none. A selection over a cached index reads no plugin
rows once the snapshots it shows are cached.

Invalidation rides on the plugin snapshots' own: every write of a plugin (or of its owner or account) drops
entries of the `plugin` cache, here and, through NOTIFY, in every other process, and each such drop counts
in that cache's `generation`. An index records the generation it was built at and is rebuilt when the
`plugin` cache has moved on since, so it can never be older than the snapshots it was made of. The
`plugin_index` cache is tagged with its account, and expires with the others (the TTL backstop).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select

from app.caching.registry import CacheRegistry, Tag
from app.models import PluginMeta
from app.models.plugin import PLUGIN_KINDS
from app.reads import Read, Reader
from app.services.plugin_runtime.bm25 import Corpus
from app.services.plugin_runtime.kinds import runtime_of
from app.services.plugin_runtime.words import TermMatcher, words
from app.services.plugins.rules import prompt_values
from app.services.plugins.snapshots import PluginSnapshot, plugin_cache, snapshots
from app.services.plugins.statements import views_read
from app.services.plugins.views import PluginView, view_of

INDEX_CACHE = "plugin_index"
_BATCH = 500

_ACCOUNT_PLUGIN_IDS = Read(
    select(PluginMeta.id).where(PluginMeta.account_id == bindparam("account_id")).order_by(PluginMeta.id)
)


@dataclass(frozen=True, slots=True)
class Indexed:
    """One plugin as the selection shows it."""

    plugin_id: int
    name: str
    plugin_class: str
    prompt: dict[str, Any]  # shared by the plugins whose settings are the same (read-only)

    def selected(self, directive: str, matched_term: str | None, score: float | None) -> dict[str, Any]:
        return {
            "id": self.plugin_id,
            "name": self.name,
            "kind": PLUGIN_KINDS[self.plugin_class],
            "directive": directive,
            "matchedTerm": matched_term,
            "score": score,
            "prompt": self.prompt,
        }


@dataclass(slots=True)
class AccountIndex:
    account_id: int
    generation: int
    # Every plugin of the account that can run as a tool, by id (MCP lists them all).
    plugins: list[Indexed] = field(default_factory=list)
    by_name: dict[str, int] = field(default_factory=dict)
    always: list[int] = field(default_factory=list)
    matcher: TermMatcher = field(default_factory=TermMatcher)
    corpus: Corpus = field(default_factory=Corpus)
    _prompts: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict)

    def add(self, view: PluginView) -> None:
        runtime = runtime_of(view.plugin_class)
        if runtime is None:
            return  # a class this server cannot run is never offered
        selector = view.selector
        directive = str(selector["directive"]) if selector is not None else None
        terms = tuple(str(term) for term in (selector or {}).get("search_terms") or ())
        values = prompt_values(view.prompt)
        prompt = {
            "provider": values["provider"],
            "systemRole": values["system_role"],
            "model": values["model"],
            "temperature": values["temperature"],
            "maxCompletionTokens": values["max_completion_tokens"],
        }
        position = len(self.plugins)
        self.plugins.append(
            Indexed(
                plugin_id=view.id,
                name=view.name,
                plugin_class=view.plugin_class,
                prompt=self._prompts.setdefault(tuple(prompt.values()), prompt),
            )
        )
        self.by_name[view.name] = position
        if directive == "always":
            self.always.append(position)
        elif directive == "search_terms":
            for term in terms:
                self.matcher.add(position, term)
        elif directive == "llm":
            texts = [view.name, view.description, runtime.description(view), *runtime.search_text(view), *terms]
            self.corpus.add(position, [word for text in texts for word in words(text)])


def _index_tags(index: AccountIndex) -> list[Tag]:
    return [("account", index.account_id)]


async def _build(reader: Reader, account_id: int, generation: int) -> AccountIndex:
    ids = [row[0] for row in await _ACCOUNT_PLUGIN_IDS.rows(reader, {"account_id": account_id})]
    index = AccountIndex(account_id=account_id, generation=generation)
    read = views_read(reader.engine.dialect.name)
    for start in range(0, len(ids), _BATCH):
        # The views themselves, not through the `plugin` cache: the index keeps none of them.
        for row in await read.rows(reader, {"plugin_ids": ids[start : start + _BATCH]}):
            index.add(view_of(row))
    return index


async def current_snapshots(
    reader: Reader, caches: CacheRegistry, plugins: Sequence[Indexed]
) -> dict[int, PluginSnapshot]:
    """The current snapshots of indexed plugins (the ones a selection or a tool call shows), by id: cached ones
    as they are, the rest in one query. A plugin deleted since the index was built has none."""
    found = await snapshots(reader, caches, [plugin.plugin_id for plugin in plugins])
    return {snapshot.plugin_id: snapshot for snapshot in found}


async def account_index(reader: Reader, caches: CacheRegistry, account_id: int) -> AccountIndex:
    """The account's index: cached while no plugin snapshot was dropped since it was built."""
    cache = caches.register(INDEX_CACHE, tags_of=_index_tags)
    generation = plugin_cache(caches).generation
    index: AccountIndex | None = cache.peek(account_id)
    if index is not None and index.generation == generation:
        return index
    if index is not None:
        cache.invalidate(account_id)
    built: AccountIndex | None = await cache.get(account_id, lambda: _build(reader, account_id, generation))
    assert built is not None  # the loader always returns an index
    return built
