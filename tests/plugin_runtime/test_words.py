"""Text normalisation, term matching and BM25 (pure functions; the routes are tested through the app)."""

from __future__ import annotations

import pytest

from app.services.plugin_runtime.bm25 import Corpus, rank
from app.services.plugin_runtime.words import TermMatcher, within_one_edit, words


def test_normalisation_folds_splits_and_lowercases() -> None:
    assert words("The getWeather API, São Paulo!") == ["the", "get", "weather", "api", "sao", "paulo"]
    assert words("HTTPServer's JSONData") == ["http", "server", "s", "json", "data"]
    assert words("naïve café—crème brûlée") == ["naive", "cafe", "creme", "brulee"]
    assert words("") == []
    assert words("🙂 ☃ ∑") == []


@pytest.mark.parametrize(
    ("a", "b", "close"),
    [
        ("weather", "weather", True),
        ("weather", "wether", True),  # deletion
        ("weather", "weathers", True),  # insertion
        ("weather", "weathor", True),  # substitution
        ("weather", "wehtaer", False),
        ("weather", "eawther", False),  # a transposition is two edits
        ("abc", "abcde", False),
    ],
)
def test_within_one_edit(a: str, b: str, close: bool) -> None:
    assert within_one_edit(a, b) is close
    assert within_one_edit(b, a) is close


def matcher(*terms: str) -> TermMatcher:
    built = TermMatcher()
    for owner, term in enumerate(terms):
        built.add(owner, term)
    return built


def test_whole_words_never_substrings() -> None:
    # The original's substring test selected "api" for "What is the capital of France?".
    assert matcher("api").matches(words("What is the capital of France?")) == {}
    assert matcher("api").matches(words("Call the API now")) == {0: 0}
    assert matcher("cat").matches(words("concatenate the catalog")) == {}


def test_terms_match_in_any_order_and_all_words_are_needed() -> None:
    built = matcher("stock price")
    assert built.matches(words("what price is that stock at")) == {0: 0}
    assert built.matches(words("what is the stock doing")) == {}


def test_fuzzy_only_for_words_of_six_letters_or_more() -> None:
    assert matcher("weather").matches(words("whats the wether like")) == {0: 0}
    assert matcher("weather").matches(words("whats the weathr like")) == {0: 0}
    assert matcher("rain").matches(words("will it rian")) == {}  # 4 letters: exact only
    assert matcher("forest").matches(words("forset walks")) == {}  # a transposition: 2 edits
    assert matcher("forest").matches(words("forests")) == {0: 0}
    # Words with digits are identifiers: exact only.
    assert matcher("order1234").matches(words("order1235")) == {}
    assert matcher("weather").matches(words("weather1")) == {}


def test_first_matching_term_of_each_owner() -> None:
    built = TermMatcher()
    built.add(0, "weather")
    built.add(0, "forecast")
    built.add(1, "forecast")
    assert built.matches(words("the forecast")) == {0: 1, 1: 2}
    assert built.matches(words("weather forecast")) == {0: 0, 1: 2}


def test_terms_without_words_never_match() -> None:
    built = matcher("!!!", "—")
    assert built.terms == []
    assert built.matches(words("!!! —")) == {}


def test_bm25_ranks_relevant_documents_and_skips_function_words() -> None:
    first, second = Corpus(), Corpus()
    first.add(10, words("currency exchange rates for the euro and the dollar"))
    first.add(11, words("the weather forecast in the city"))
    second.add(20, words("exchange rates of crypto currency"))
    ranked = rank([first, second], words("What is the exchange rate of the euro?"))
    assert [(which, owner) for which, owner, _ in ranked] == [(0, 10), (1, 20)]
    assert all(score > 0 for *_, score in ranked)
    assert rank([first, second], words("the of and")) == []
    assert rank([], words("anything")) == []
