"""Attribute discovery notes a bounded sample of the routed events."""

from __future__ import annotations

from sluice.engine import discovery
from sluice.engine.discovery import AttributeDiscovery
from sluice.engine.router import StoredEvent


def _events(first: int, count: int) -> list[StoredEvent]:
    # Each event has an attribute of its own, so what was looked at shows in the names.
    return [
        StoredEvent(n, f"e{n}", "pro_1", 0.0, {"page": "/", f"only_{n}": n, "cart": {"n": n}})
        for n in range(first, first + count)
    ]


def test_names_types_samples_and_nested_attributes_are_noted() -> None:
    seen = AttributeDiscovery()
    seen.observe(_events(0, 1), now=100.0)
    noted = seen.take()["pro_1"]
    assert noted["page"] == ("string", "/", 100.0, 100.0)
    assert noted["only_0"][0] == "number"
    assert noted["cart.n"][0] == "number"
    assert seen.take() == {}


def test_each_batch_and_each_second_is_sampled_within_bounds() -> None:
    seen = AttributeDiscovery()
    per_second = discovery.SAMPLE_PER_SECOND
    for batch in range(10):  # 10 batches of 500 in the same second
        seen.observe(_events(batch * 500, 500), now=100.5)
    looked_at = [n for n in seen.take()["pro_1"] if n.startswith("only_")]
    assert len(looked_at) == per_second
    assert len({int(n.split("_")[1]) // 500 for n in looked_at}) == per_second // (
        discovery.SAMPLE_PER_BATCH
    )  # spread over the batches, at most SAMPLE_PER_BATCH of each
    seen.observe(_events(10_000, 500), now=101.0)  # a new second, a new budget
    assert len(seen.take()["pro_1"]) > discovery.SAMPLE_PER_BATCH
