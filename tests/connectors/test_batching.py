"""The shared packer: limits by count and bytes, per-item mapping errors, item indexes."""

from __future__ import annotations

import pytest

from sluice.connectors.batching import (
    Batch,
    BatchRequest,
    json_entry,
    pack,
    sent_positions,
    with_rejected,
)
from sluice.connectors.definition import ActionInput, HttpRequest
from sluice.connectors.testing import make_inputs
from sluice.errors import FatalDelivery, MappingError, RetryableDelivery


def inputs(*sizes: int) -> list[ActionInput]:
    """One input per size; a negative size is an input whose mapping fails."""
    return make_inputs("a", [{"size": size} for size in sizes])


def entry(event: ActionInput) -> tuple[str, int]:
    size = event.params["size"]
    if size < 0:
        raise MappingError("size", f"bad {event.event_id}")
    return event.event_id, size


def layout(batches: list[Batch[str]]) -> list[tuple[list[int], list[str], dict[int, str]]]:
    return [(b.items, b.entries, b.rejected) for b in batches]


def test_batches_hold_at_most_max_count_entries() -> None:
    batches = pack(inputs(1, 1, 1, 1, 1), entry, max_count=2)
    assert [b.items for b in batches] == [[0, 1], [2, 3], [4]]
    assert [b.entries for b in batches] == [["evt_1", "evt_2"], ["evt_3", "evt_4"], ["evt_5"]]


def test_batches_stay_within_max_bytes_overhead_included() -> None:
    batches = pack(inputs(4, 4, 4, 1), entry, max_bytes=10, overhead=2)
    assert [b.items for b in batches] == [[0, 1], [2, 3]]
    assert [b.size for b in batches] == [10, 7]


def test_an_entry_too_big_alone_goes_alone_unless_refused() -> None:
    alone = pack(inputs(1, 20, 1), entry, max_bytes=10)
    assert [b.items for b in alone] == [[0], [1], [2]]
    refused = pack(inputs(1, 20, 1), entry, max_bytes=10, too_big=("data", "too big"))
    assert layout(refused) == [([0, 1, 2], ["evt_1", "evt_3"], {1: "parameter 'data': too big"})]


def test_mapping_errors_ride_along_where_they_came() -> None:
    batches = pack(inputs(-1, 1, 1, -1, 1, -1), entry, max_count=2)
    assert layout(batches) == [
        (
            [0, 1, 2, 3],
            ["evt_2", "evt_3"],
            {0: "parameter 'size': bad evt_1", 3: "parameter 'size': bad evt_4"},
        ),
        ([4, 5], ["evt_5"], {1: "parameter 'size': bad evt_6"}),
    ]
    assert [b.sent for b in batches] == [[1, 2], [0]]


def test_mapping_errors_can_ride_after_the_last_batchs_entries() -> None:
    batches = pack(inputs(1, -1, 1, 1), entry, max_count=2, rejected_last=True)
    assert layout(batches) == [
        ([0, 2], ["evt_1", "evt_3"], {}),
        ([3, 1], ["evt_4"], {1: "parameter 'size': bad evt_2"}),
    ]


def test_with_nothing_to_send_the_first_mapping_error_is_raised() -> None:
    with pytest.raises(MappingError, match="bad evt_1"):
        pack(inputs(-1, -2), entry, max_count=2)
    assert pack([], entry) == []


def test_groups_and_a_vendor_rule_open_new_batches() -> None:
    def fits(batch: Batch[str], item: str) -> bool:
        return item != "evt_3"  # this one wants a batch of its own

    batches = pack(inputs(1, 2, 1, 2, 1), entry, fits=fits, group=lambda e: e in ("evt_2", "evt_4"))
    assert [(b.key, b.items) for b in batches] == [(False, [0]), (True, [1, 3]), (False, [2, 4])]


def test_json_entry_counts_the_json_and_a_comma() -> None:
    assert json_entry({"a": 1}) == ({"a": 1}, len(b'{"a":1}') + 1)
    with pytest.raises(MappingError, match="'props'"):
        json_entry({"a": object()}, "props")


def request(items: tuple[int, ...], rejected: dict[int, str] | None = None) -> HttpRequest:
    if rejected is None:
        return HttpRequest("POST", "https://x.test", items=items)
    return BatchRequest("POST", "https://x.test", items=items, rejected=rejected)


def test_outcomes_land_on_their_items_and_rejected_ones_are_mapping_errors() -> None:
    req = request((5, 6, 7), {1: "bad"})
    assert sent_positions(req) == [0, 2]
    retry = RetryableDelivery("http_5xx", "later")
    each = with_rejected(req, [None, retry])
    assert isinstance(each, list)
    assert each[0] is None
    assert each[2] is retry
    assert isinstance(each[1], FatalDelivery)
    assert (each[1].category, each[1].message) == ("mapping", "bad")
    whole = with_rejected(req, retry)
    assert isinstance(whole, list)
    assert [o if o is retry else o and o.category for o in whole] == [retry, "mapping", retry]


def test_without_rejected_items_the_verdict_is_unchanged() -> None:
    retry = RetryableDelivery("http_5xx", "later")
    assert with_rejected(request((0, 1)), retry) is retry
    assert with_rejected(request((0, 1), {}), [None, retry]) == [None, retry]
    assert sent_positions(request((3, 4))) == [0, 1]


def test_a_batch_makes_the_request_that_carries_it() -> None:
    [batch] = pack(inputs(1, -1, 1), entry)
    req = batch.request("https://x.test", {"A": "b"}, b"[]", sensitive_headers=frozenset({"a"}))
    assert (req.method, req.items, req.rejected) == ("POST", (0, 1, 2), batch.rejected)
    assert sent_positions(req) == batch.sent == [0, 2]
