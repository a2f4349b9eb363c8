"""The matching index of one account's plugins, cached and dropped with the plugins' snapshots.

An index holds what a selection reads of every plugin of the account: its snapshot, directive, search terms
(in a `words.TermMatcher`), its `llm` document (in a `bm25.Corpus`) and its prompt settings. A selection over
a cached index reads no plugin rows at all.

Invalidation rides on the plugin snapshots' own: every write of a plugin (or of its owner or account) drops
entries of the `plugin` cache, here and, through NOTIFY, in every other process, and each such drop counts
in that cache's `generation`. An index records the generation it was built at and is rebuilt when the
`plugin` cache has moved on since, so it can never be older than the snapshots it was made of. The
`plugin_index` cache is tagged with its account, and expires with the others (the TTL backstop).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select

from app.caching.registry import CacheRegistry, Tag
from app.models import PluginMeta
from app.models.plugin import PLUGIN_KINDS
from app.reads import Read, Reader
from app.services.plugin_runtime.bm25 import Corpus
from app.services.plugin_runtime.kinds import runtime_of
from app.services.plugin_runtime.tools import Tool, tool_of
from app.services.plugin_runtime.words import TermMatcher, words
from app.services.plugins.rules import prompt_values
from app.services.plugins.snapshots import PluginSnapshot, plugin_cache, snapshots

INDEX_CACHE = "plugin_index"
_BATCH = 500

_ACCOUNT_PLUGIN_IDS = Read(
    select(PluginMeta.id).where(PluginMeta.account_id == bindparam("account_id")).order_by(PluginMeta.id)
)


@dataclass(slots=True)
class Indexed:
    """One plugin as the selection shows it."""

    snapshot: PluginSnapshot
    directive: str | None
    search_terms: tuple[str, ...]
    prompt: dict[str, Any]
    _tool: Tool | None = field(default=None, init=False, repr=False)

    @property
    def name(self) -> str:
        return self.snapshot.view.name

    def tool(self, caches: CacheRegistry) -> Tool:
        """The plugin's tool, kept with the entry: both are made of its snapshot, which the index's generation
        keeps current (a selection reads a tool per plugin it selects; a cache look-up costs more)."""
        if self._tool is None:
            self._tool = tool_of(caches, self.snapshot)
        return self._tool

    def selected(self, directive: str, matched_term: str | None, score: float | None) -> dict[str, Any]:
        view = self.snapshot.view
        return {
            "id": view.id,
            "name": view.name,
            "kind": PLUGIN_KINDS[view.plugin_class],
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

    def add(self, snapshot: PluginSnapshot) -> None:
        view = snapshot.view
        runtime = runtime_of(view.plugin_class)
        if runtime is None:
            return  # a class this server cannot run is never offered
        selector = view.selector
        directive = str(selector["directive"]) if selector is not None else None
        terms = tuple(str(term) for term in (selector or {}).get("search_terms") or ())
        prompt = prompt_values(view.prompt)
        position = len(self.plugins)
        self.plugins.append(
            Indexed(
                snapshot=snapshot,
                directive=directive,
                search_terms=terms,
                prompt={
                    "provider": prompt["provider"],
                    "systemRole": prompt["system_role"],
                    "model": prompt["model"],
                    "temperature": prompt["temperature"],
                    "maxCompletionTokens": prompt["max_completion_tokens"],
                },
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


async def _build(reader: Reader, caches: CacheRegistry, account_id: int, generation: int) -> AccountIndex:
    ids = [row[0] for row in await _ACCOUNT_PLUGIN_IDS.rows(reader, {"account_id": account_id})]
    index = AccountIndex(account_id=account_id, generation=generation)
    for start in range(0, len(ids), _BATCH):
        for snapshot in await snapshots(reader, caches, ids[start : start + _BATCH]):
            index.add(snapshot)
    return index


async def account_index(reader: Reader, caches: CacheRegistry, account_id: int) -> AccountIndex:
    """The account's index: cached while no plugin snapshot was dropped since it was built."""
    cache = caches.register(INDEX_CACHE, tags_of=_index_tags)
    generation = plugin_cache(caches).generation
    index: AccountIndex | None = cache.peek(account_id)
    if index is not None and index.generation == generation:
        return index
    if index is not None:
        cache.invalidate(account_id)
    built: AccountIndex | None = await cache.get(account_id, lambda: _build(reader, caches, account_id, generation))
    assert built is not None  # the loader always returns an index
    return built
