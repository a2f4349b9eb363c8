"""Text as the selector sees it, and whether a search term matches it.

Normalisation (the contract's): Unicode folded to ASCII, camelCase split, lowercased, every run of
characters other than letters and digits a word boundary. A term matches a text when each of its words is a
whole word of the text, in any order; a term word of `FUZZY_MIN_LETTERS` or more letters also matches a text
word within Levenshtein distance 1 (one insertion, deletion or substitution). Never a substring: the
original's `"api" in "capital"` selected plugins by accident.

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

_ACRONYM_HUMP = re.compile(r"([A-Z]+)([A-Z][a-z])")
_CAMEL_HUMP = re.compile(r"([a-z0-9])([A-Z])")
_WORD = re.compile(r"[a-z0-9]+")
# Anything but letters, digits and combining accents, in any script: a boundary, made a space *before* folding
# (folding drops what has no ASCII form, which would glue "café—crème" into one word).
_BOUNDARY = re.compile(r"[^\w\u0300-\u036f]+")


def words(text: str) -> list[str]:
    """`"The getWeather API, São Paulo!"` -> `["the", "get", "weather", "api", "sao", "paulo"]`."""
    folded = fold_to_ascii(_BOUNDARY.sub(" ", text))
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
    # deletion variant (or the word itself) -> the long term words it stands for
    _fuzzy: dict[str, set[str]] = field(default_factory=dict)

    def add(self, owner: int, text: str) -> None:
        term_words = tuple(dict.fromkeys(words(text)))
        if not term_words:
            return  # a term of punctuation only can never match
        position = len(self.terms)
        self.terms.append(Term(owner, text, term_words))
        for word in term_words:
            postings = self._by_word.setdefault(word, [])
            if not postings or postings[-1] != position:
                postings.append(position)
            if len(word) >= FUZZY_MIN_LETTERS:
                for variant in (word, *_deletions(word)):
                    self._fuzzy.setdefault(variant, set()).add(word)

    def _matched_words(self, text_words: Iterable[str]) -> set[str]:
        found: set[str] = set()
        by_word, fuzzy = self._by_word, self._fuzzy
        for word in set(text_words):
            if word in by_word:
                found.add(word)
            if len(word) < FUZZY_MIN_LETTERS - 1:
                continue  # no term word of 6+ letters is one edit away
            for variant in (word, *_deletions(word)):
                for candidate in fuzzy.get(variant, ()):
                    if candidate not in found and within_one_edit(word, candidate):
                        found.add(candidate)
        return found

    def matches(self, text_words: Sequence[str]) -> dict[int, int]:
        """{owner: the position of its first matching term} for the text of `text_words`."""
        matched = self._matched_words(text_words)
        candidates: set[int] = set()
        for word in matched:
            candidates.update(self._by_word[word])
        first: dict[int, int] = {}
        for position in sorted(candidates):
            term = self.terms[position]
            if term.owner not in first and all(word in matched for word in term.words):
                first[term.owner] = position
        return first
