"""Which plugins a prompt should offer the LLM (`POST /api/v1/plugins/selection/`), and as which tools.

The plugins are the acting account's and the platform's (both in the caller's read scope); a platform plugin
whose name the account also uses is left out (the account's own comes first, and tool names must be unique).
Order: `always`, then `search_terms` matches (on the prompt, or on any `user` turn of the history), then `llm`
plugins by BM25 relevance to the prompt (positive scores only); within the first two groups the account's
plugins before the platform's, each by id. At most `max_tools`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from pydantic_core import to_json
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.caching.registry import CacheRegistry
from app.reads import Reader
from app.schemas.plugin_runtime import SelectionRequest
from app.services.permissions import acting_account, acting_account_known
from app.services.plugin_runtime.bm25 import rank
from app.services.plugin_runtime.index import AccountIndex, Indexed, account_index
from app.services.plugin_runtime.words import words
from app.services.principals import Principal

SCORE_DIGITS = 6


async def acting_account_id(
    sessions: async_sessionmaker[AsyncSession], principal: Principal, account_number: str | None, *, where: str
) -> int:
    """The acting account by `permissions.acting_account` (the one rule). It reads the database only to look up
    a named account, so a session is made only then: even an unused one costs a tenth of a call."""
    known = acting_account_known(principal, account_number, where=where)
    if known is not None:
        return known.account_id
    async with sessions() as session:
        return (await acting_account(session, principal, account_number, where=where)).account_id


async def scope_indexes(
    reader: Reader, caches: CacheRegistry, principal: Principal, acting_account_id: int
) -> list[AccountIndex]:
    """The indexes a caller acting in `acting_account_id` selects from: that account's, then the platform's."""
    indexes = [await account_index(reader, caches, acting_account_id)]
    platform = principal.platform_account_id
    if platform is not None and platform != acting_account_id:
        indexes.append(await account_index(reader, caches, platform))
    return indexes


def _shadowed(indexes: Sequence[AccountIndex], which: int, position: int) -> bool:
    """A later index's plugin whose name an earlier index (the caller's own account) also uses."""
    if not which:
        return False  # the first index is the caller's own
    name = indexes[which].plugins[position].name
    return any(name in index.by_name for index in indexes[:which])


def visible(indexes: Sequence[AccountIndex]) -> Iterator[Indexed]:
    """Every plugin of the indexes, own account first, a shadowed platform plugin left out (MCP's tools)."""
    for which, index in enumerate(indexes):
        for position, plugin in enumerate(index.plugins):
            if not _shadowed(indexes, which, position):
                yield plugin


def find_by_name(indexes: Sequence[AccountIndex], name: str) -> Indexed | None:
    for index in indexes:
        position = index.by_name.get(name)
        if position is not None:
            return index.plugins[position]
    return None


def select(indexes: Sequence[AccountIndex], request: SelectionRequest) -> list[tuple[Indexed, dict[str, Any]]]:
    """The selected plugins with their `selected` entries, in order, at most `request.max_tools`."""
    chosen: list[tuple[Indexed, dict[str, Any]]] = []
    taken: set[int] = set()
    limit = request.max_tools

    def take(which: int, position: int, directive: str, term: str | None, score: float | None) -> bool:
        plugin = indexes[which].plugins[position]
        if plugin.snapshot.plugin_id not in taken and not _shadowed(indexes, which, position):
            taken.add(plugin.snapshot.plugin_id)
            chosen.append((plugin, plugin.selected(directive, term, score)))
        return len(chosen) >= limit

    for which, index in enumerate(indexes):
        for position in index.always:
            if take(which, position, "always", None, None):
                return chosen

    prompt_words = words(request.prompt)
    turns = [words(message.content) for message in request.history if message.role == "user" and message.content]
    for which, index in enumerate(indexes):
        if not index.matcher.terms:
            continue
        found = index.matcher.matches(prompt_words)
        for turn in turns:
            for owner, term in index.matcher.matches(turn).items():
                found.setdefault(owner, term)
        for position in sorted(found):
            if take(which, position, "search_terms", index.matcher.terms[found[position]].text, None):
                return chosen

    for which, position, score in rank([index.corpus for index in indexes], prompt_words):
        if take(which, position, "llm", None, round(score, SCORE_DIGITS)):
            return chosen
    return chosen


async def selection(
    reader: Reader, caches: CacheRegistry, principal: Principal, acting_account_id: int, request: SelectionRequest
) -> bytes:
    """The JSON body of `POST /api/v1/plugins/selection/`: `{selected, tools}`, the tools' definitions as each
    tool keeps them serialised (most of the body, and the same on every selection that picks the tool)."""
    indexes = await scope_indexes(reader, caches, principal, acting_account_id)
    chosen = select(indexes, request)
    tools = b",".join(plugin.tool(caches).definition_json(request.format) for plugin, _ in chosen)
    return b'{"selected":' + to_json([entry for _, entry in chosen]) + b',"tools":[' + tools + b"]}"
