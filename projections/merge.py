"""How a projected batch lands on the stored read models: the rules every read-model
store applies inside its atomic write, written once (the application computes, the
store stores; a third store reads and writes, it does not decide).

- ``refuses_batch``: a batch at or below the stored position, or computed from a
  position that has since moved, changes nothing (redelivery, replay and a second
  projector are harmless).
- ``merged``: what one batch's ``ActionDelta`` makes of an action view's changeable
  fields. Counters add up; status, totals, last outcome, finish and discrepancy take
  the batch's value when it has one; the first outcome is kept once set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from application.ports.read_models import ActionDelta

COUNTERS = ("chunks_done", "succeeded", "failed", "skipped")
# Fields a delta overwrites when it carries a value.
LATEST_WINS = (
    "status",
    "total",
    "chunk_count",
    "last_outcome_at",
    "finished_at",
    "discrepancy",
    "reverted_by",
    "retried_by",
)
FIRST_WINS = ("first_outcome_at",)
# Every field of an action view that a delta can change.
MUTABLE = (*COUNTERS, *LATEST_WINS, *FIRST_WINS)


def refuses_batch(stored: int, position: int, expected: int | None) -> bool:
    """Whether a store at ``stored`` refuses the batch that ends at ``position`` and was
    computed from ``expected`` (None: from wherever the store is)."""
    return stored >= position or (expected is not None and stored != expected)


def merged(current: Mapping[str, Any], delta: ActionDelta) -> dict[str, Any]:
    """The ``MUTABLE`` fields of an action view after ``delta``, from their ``current`` values."""
    fields: dict[str, Any] = {name: current[name] + getattr(delta, name) for name in COUNTERS}
    # .get: a view stored before a field existed (reverted_by) lacks it.
    for name in LATEST_WINS:
        value = getattr(delta, name)
        fields[name] = current.get(name) if value is None else value
    for name in FIRST_WINS:
        fields[name] = getattr(delta, name) if current.get(name) is None else current[name]
    return fields
