"""Packing a batch of inputs into vendor requests, with per-item mapping errors.

:func:`pack` turns the inputs handed to ``build`` into :class:`Batch` es, each one request's
worth of entries under the vendor's limits. An input whose entry cannot be built (a
:class:`~sluice.errors.MappingError`) is not sent, but still *carried* by a request: it
stands in the request's ``items`` and in :attr:`BatchRequest.rejected`, and
:func:`with_rejected` turns the vendor's verdict on the sent entries into one outcome per
item, a ``mapping`` error for each rejected one. Only when no input at all can be sent is
the first mapping error raised, for the whole batch.

Positions: ``items`` index the inputs; ``sent`` and ``rejected`` index ``items``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sluice.connectors.definition import ActionInput, HttpRequest, Outcome
from sluice.connectors.helpers import dump_json
from sluice.errors import FatalDelivery, MappingError

T = TypeVar("T")


@dataclass
class Batch(Generic[T]):
    """One request's worth: the entries to send and every input the request carries."""

    entries: list[T] = field(default_factory=list)  # in body order
    items: list[int] = field(default_factory=list)  # indexes of the inputs carried
    sent: list[int] = field(default_factory=list)  # positions in items of the entries
    rejected: dict[int, str] = field(default_factory=dict)  # positions in items -> why
    size: int = 0  # bytes counted against max_bytes, overhead included
    key: Hashable = None  # the group (see ``pack``)

    def carry(self, index: int, problem: str) -> None:
        self.rejected[len(self.items)] = problem
        self.items.append(index)

    def add(self, index: int, entry: T, size: int) -> None:
        self.sent.append(len(self.items))
        self.items.append(index)
        self.entries.append(entry)
        self.size += size

    def request(
        self,
        url: str,
        headers: dict[str, str],
        body: bytes,
        *,
        method: str = "POST",
        sensitive_headers: frozenset[str] = frozenset(),
    ) -> BatchRequest:
        """The request carrying this batch: ``body`` holds its entries."""
        return BatchRequest(
            method, url, headers, body, tuple(self.items), sensitive_headers, dict(self.rejected)
        )


@dataclass
class BatchRequest(HttpRequest):
    """A request that carries some items without sending them, for a mapping problem."""

    rejected: dict[int, str] = field(default_factory=dict)  # positions in items -> why


# An input's entry and its size as the vendor counts it (0 where only counts matter).
EntryFn = Callable[[ActionInput], tuple[T, int]]


def pack(
    inputs: Sequence[ActionInput],
    entry_of: EntryFn[T],
    *,
    max_count: int | None = None,
    max_bytes: int | None = None,
    overhead: int = 0,
    too_big: tuple[str, str] | None = None,
    fits: Callable[[Batch[T], T], bool] | None = None,
    group: Callable[[T], Hashable] | None = None,
    rejected_last: bool = False,
) -> list[Batch[T]]:
    """The inputs' entries in batches of at most ``max_count`` and ``max_bytes``.

    A batch's size starts at ``overhead`` (the envelope around the entries). An entry over
    ``max_bytes`` on its own is refused as ``MappingError(*too_big)`` when ``too_big`` is
    given, else sent in a batch of its own. ``fits`` adds a vendor's own limit (is there
    room for this entry in this batch?); ``group`` keeps entries of different keys apart.

    A rejected input rides with the batch open when it came (the first one, when none is
    yet), or with ``rejected_last`` after everything in the last batch.
    """
    batches: list[Batch[T]] = []
    open_by_key: dict[Hashable, Batch[T]] = {}
    waiting = Batch[T]()  # rejected inputs before the first batch
    refused: list[tuple[int, str]] = []
    first: MappingError | None = None
    for index, event in enumerate(inputs):
        try:
            entry, size = entry_of(event)
            if too_big is not None and max_bytes is not None and overhead + size > max_bytes:
                raise MappingError(*too_big)
        except MappingError as exc:
            first = first or exc
            if rejected_last:
                refused.append((index, str(exc)))
            else:
                (batches[-1] if batches else waiting).carry(index, str(exc))
            continue
        key = group(entry) if group is not None else None
        batch = open_by_key.get(key)
        if batch is None or not _room(batch, entry, size, max_count, max_bytes, fits):
            batch = open_by_key[key] = Batch(size=overhead, key=key)
            if not batches:
                batch.items, batch.rejected = waiting.items, waiting.rejected
            batches.append(batch)
        batch.add(index, entry, size)
    if not batches:
        if first is not None:
            raise first  # nothing valid to send at all
        return []
    for index, problem in refused:
        batches[-1].carry(index, problem)
    return batches


def _room(
    batch: Batch[T],
    entry: T,
    size: int,
    max_count: int | None,
    max_bytes: int | None,
    fits: Callable[[Batch[T], T], bool] | None,
) -> bool:
    if max_count is not None and len(batch.entries) >= max_count:
        return False
    if max_bytes is not None and batch.size + size > max_bytes:
        return False
    return fits is None or fits(batch, entry)


def json_entry(body: T, parameter: str = "body") -> tuple[T, int]:
    """``body`` and its size as an element of a JSON array: its JSON bytes and a comma."""
    return body, len(dump_json(body, parameter)) + 1


def sent_positions(request: HttpRequest) -> list[int]:
    """Positions in ``request.items`` of the entries its body holds, in body order."""
    rejected = request.rejected if isinstance(request, BatchRequest) else {}
    return [pos for pos in range(len(request.items)) if pos not in rejected]


def with_rejected(
    request: HttpRequest, verdict: Outcome | list[Outcome]
) -> Outcome | list[Outcome]:
    """One outcome per item: ``verdict`` on the sent entries (one for all, or one each in
    body order), a ``mapping`` error for each rejected item. Unchanged with none rejected."""
    rejected = request.rejected if isinstance(request, BatchRequest) else {}
    if not rejected:
        return verdict
    outcomes: list[Outcome] = [None] * len(request.items)
    for k, pos in enumerate(sent_positions(request)):
        if not isinstance(verdict, list):
            outcomes[pos] = verdict
        elif k < len(verdict):
            outcomes[pos] = verdict[k]
    for pos, problem in rejected.items():
        outcomes[pos] = FatalDelivery("mapping", problem)
    return outcomes
