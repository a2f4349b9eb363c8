"""Okapi BM25 over the `llm` plugins of one or more account indexes (a small implementation, documented).

Each document is the words (`words.words`) of a plugin's name, description, data description, parameter
descriptions and search terms, English function words left out (they would give every plugin a small positive
score). A corpus keeps, per word, its postings (document, term frequency) and its document frequency, plus the
documents' lengths. A query may span several corpora (an account's and the platform's): the statistics are
summed at query time, so each account's corpus is built once and cached with its index.

score(d, q) = sum over distinct query words w of idf(w) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * |d| / avgdl)),
idf(w) = ln(1 + (N - df + 0.5) / (df + 0.5)) (Lucene's, always positive), k1 = 1.2, b = 0.75.
A word of the query that no document holds adds nothing, so only documents sharing a word score above 0.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

K1 = 1.2
B = 0.75

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her here
    hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of
    off on once only or other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours yourself yourselves please s t""".split()
)


def terms_of(text_words: Iterable[str]) -> list[str]:
    return [word for word in text_words if word not in STOPWORDS]


@dataclass(slots=True)
class Corpus:
    """The BM25 statistics of one account's `llm` plugins; `owners[d]` is document d's plugin position."""

    owners: list[int] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    postings: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    total_length: int = 0

    def add(self, owner: int, text_words: Sequence[str]) -> None:
        document = len(self.owners)
        counted = Counter(terms_of(text_words))
        self.owners.append(owner)
        length = sum(counted.values())
        self.lengths.append(length)
        self.total_length += length
        for word, frequency in counted.items():
            self.postings.setdefault(word, []).append((document, frequency))


def rank(corpora: Sequence[Corpus], query_words: Iterable[str]) -> list[tuple[int, int, float]]:
    """(corpus index, owner, score) of every document with a positive score, best first (ties: corpus order)."""
    documents = sum(len(corpus.owners) for corpus in corpora)
    if documents == 0:
        return []
    average = max(sum(corpus.total_length for corpus in corpora) / documents, 1e-9)
    scores: dict[tuple[int, int], float] = {}
    for word in set(terms_of(query_words)):
        frequency = sum(len(corpus.postings.get(word, ())) for corpus in corpora)
        if frequency == 0:
            continue
        idf = math.log(1 + (documents - frequency + 0.5) / (frequency + 0.5))
        for which, corpus in enumerate(corpora):
            for document, tf in corpus.postings.get(word, ()):
                norm = tf + K1 * (1 - B + B * corpus.lengths[document] / average)
                key = (which, document)
                scores[key] = scores.get(key, 0.0) + idf * tf * (K1 + 1) / norm
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    return [(which, corpora[which].owners[document], score) for (which, document), score in ranked if score > 0]
