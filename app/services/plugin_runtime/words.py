"""Text as the selector sees it, and whether a search term matches it.

Normalisation (the contract's): Unicode folded to ASCII, camelCase split, lowercased, every run of
characters other than letters and digits a word boundary. A term matches a text when each of its words is a
whole word of the text, in any order; a term word of `FUZZY_MIN_LETTERS` or more letters (letters only: a
word with digits, such as `order1234` or `2026`, is an identifier, where one edit names another thing) also
matches a text word within Levenshtein distance 1 (one insertion, deletion or substitution). Never a
substring: the original's `"api" in "capital"` selected plugins by accident.

`TermMatcher` finds every matching term of many plugins at once: an inverted index from word to terms, and
for the fuzzy rule the symmetric-delete scheme (each long term word is indexed under itself and the variants
with one letter deleted; a text word looks up itself and its own one-deletion variants, and every candidate
is confirmed with an exact distance check). A text costs a few dictionary look-ups per distinct word,
whatever the number of terms.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from app.text import fold_to_ascii

FUZZY_MIN_LETTERS = 6
SEEN_WORDS = 4_096  # the text words whose matches an index remembers (under a MiB)

_ACRONYM_HUMP = re.compile(r"([A-Z]+)([A-Z][a-z])")
_CAMEL_HUMP = re.compile(r"([a-z0-9])([A-Z])")
_WORD = re.compile(r"[a-z0-9]+")
# Anything but letters, digits and combining accents, in any script: a boundary, made a space *before* folding
# (folding drops what has no ASCII form, which would glue "café—crème" into one word).
_BOUNDARY = re.compile(r"[^\w\u0300-\u036f]+")


def words(text: str) -> list[str]:
    """`"The getWeather API, São Paulo!"` -> `["the", "get", "weather", "api", "sao", "paulo"]`."""
    # ASCII text (most prompts) needs no folding, and its boundaries are what `_WORD` leaves out anyway.
    folded = text if text.isascii() else fold_to_ascii(_BOUNDARY.sub(" ", text))
    split = _CAMEL_HUMP.sub(r"\1 \2", _ACRONYM_HUMP.sub(r"\1 \2", folded))
    return _WORD.findall(split.lower())


def within_one_edit(a: str, b: str) -> bool:
    """Levenshtein distance of `a` and `b` is at most 1 (linear: one pass over the common prefix and suffix)."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    prefix = 0
    while prefix < len(a) and a[prefix] == b[prefix]:
        prefix += 1
    if len(a) == len(b):
        return a[prefix + 1 :] == b[prefix + 1 :]
    return a[prefix:] == b[prefix + 1 :]


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


@dataclass(frozen=True, slots=True)
class Term:
    """One search term of one plugin: `owner` is the plugin's position in its index."""

    owner: int
    text: str
    words: tuple[str, ...]


@dataclass(slots=True)
class TermMatcher:
    """The search terms of many plugins, indexed for matching texts (built once per account index)."""

    terms: list[Term] = field(default_factory=list)
    _by_word: dict[str, list[int]] = field(default_factory=dict)
    # deletion variant (or the word itself) -> the long term word it stands for, or the set of them when it
    # stands for several: most stand for one, and a set per variant was a fifth of a selection index's memory.
    _fuzzy: dict[str, str | set[str]] = field(default_factory=dict)
    # Each term under its rarest word only (built on first use): a term matches only if that word does, and a
    # word that many terms share ("sales" in "north sales", "south sales", ...) then costs nothing.
    _by_key: dict[str, list[int]] | None = None
    # text word -> the term words it matches: prompts share most of their words, and a long word's look-ups
    # (itself and each one-deletion variant) cost more than the rest of its matching. Cleared when full.
    _seen: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def add(self, owner: int, text: str) -> None:
        term_words = tuple(dict.fromkeys(words(text)))
        if not term_words:
            return  # a term of punctuation only can never match
        position = len(self.terms)
        self.terms.append(Term(owner, text, term_words))
        self._by_key = None
        self._seen.clear()
        for word in term_words:
            postings = self._by_word.setdefault(word, [])
            if not postings or postings[-1] != position:
                postings.append(position)
            if len(word) >= FUZZY_MIN_LETTERS and word.isalpha():
                for variant in (word, *_deletions(word)):
                    self._add_fuzzy(variant, word)

    def _add_fuzzy(self, variant: str, word: str) -> None:
        known = self._fuzzy.get(variant)
        if known is None:
            self._fuzzy[variant] = word
        elif isinstance(known, set):
            known.add(word)
        elif known != word:
            self._fuzzy[variant] = {known, word}

    def _word_matches(self, word: str) -> tuple[str, ...]:
        """The term words that `word` of a text matches: itself, and those one edit away (6+ letters)."""
        found = [word] if word in self._by_word else []
        size = len(word)
        if size >= FUZZY_MIN_LETTERS - 1 and word.isalpha():  # else no term word of 6+ letters is one edit away
            fuzzy_get = self._fuzzy.get
            hits: set[str] = set()
            for variant in (word, *(word[:cut] + word[cut + 1 :] for cut in range(size))):
                more = fuzzy_get(variant)
                if more is None:
                    continue
                if isinstance(more, str):
                    hits.add(more)
                else:
                    hits |= more
            found.extend(candidate for candidate in hits if within_one_edit(word, candidate))
        return tuple(found)

    def _matched_words(self, text_words: Iterable[str]) -> set[str]:
        found: set[str] = set()
        seen = self._seen
        for word in set(text_words):
            matches = seen.get(word)
            if matches is None:
                matches = self._word_matches(word)
                if len(seen) >= SEEN_WORDS:
                    seen.clear()
                seen[word] = matches
            found.update(matches)
        return found

    def _key_index(self) -> dict[str, list[int]]:
        by_key: dict[str, list[int]] = {}
        for position, term in enumerate(self.terms):
            rarest = min(term.words, key=lambda word: len(self._by_word[word]))
            by_key.setdefault(rarest, []).append(position)
        self._by_key = by_key
        return by_key

    def matches(self, text_words: Sequence[str]) -> dict[int, int]:
        """{owner: the position of its first matching term} for the text of `text_words`."""
        matched = self._matched_words(text_words)
        by_key = self._by_key if self._by_key is not None else self._key_index()
        candidates: set[int] = set()
        for word in matched:
            candidates.update(by_key.get(word, ()))
        first: dict[int, int] = {}
        for position in sorted(candidates):
            term = self.terms[position]
            if term.owner not in first and matched.issuperset(term.words):
                first[term.owner] = position
        return first
