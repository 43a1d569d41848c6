from __future__ import annotations

from sluice.config.search import Entry, SearchIndex


def _index(*titles: str) -> SearchIndex:
    return SearchIndex(
        Entry("connector", f"con_{i}", title, "", f"/c/{i}") for i, title in enumerate(titles)
    )


def _titles(index: SearchIndex, query: str) -> list[str]:
    return [entry.title for _, entry in index.search(query)]


def test_word_prefix_then_substring_then_fuzzy() -> None:
    index = _index("Order SMS", "Send order", "Reorder", "Old Rider")
    # "Old Rider" holds the letters in order: a fuzzy match, ranked last.
    assert _titles(index, "order") == ["Order SMS", "Send order", "Reorder", "Old Rider"]
    assert _titles(index, "ordr")[-1] == "Old Rider"


def test_camel_case_and_multi_word() -> None:
    index = _index("ClickSend Prod", "Prod Mailchimp")
    assert _titles(index, "send") == ["ClickSend Prod"]
    assert _titles(index, "pro mail") == ["Prod Mailchimp"]


def test_one_typo_matches() -> None:
    index = _index("Slack Alerts", "Braze")
    assert _titles(index, "slcak") == ["Slack Alerts"]
    assert _titles(index, "brase") == ["Braze"]


def test_ids_match_only_when_pasted() -> None:
    index = _index("Alpha", "Beta")
    assert _titles(index, "con") == []
    assert _titles(index, "con_1") == ["Beta"]


def test_blank_query_finds_nothing() -> None:
    assert _titles(_index("Alpha"), "  ") == []
