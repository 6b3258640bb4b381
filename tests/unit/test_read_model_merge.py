"""The merge rule of projected batches, as every read-model store applies it."""

from __future__ import annotations

import pytest

from application.ports.read_models import ActionDelta
from projections.merge import MUTABLE, merged, refuses_batch

pytestmark = pytest.mark.unit

STORED = {
    "chunks_done": 1,
    "succeeded": 5,
    "failed": 1,
    "skipped": 0,
    "status": "PROCESSING",
    "total": 20,
    "chunk_count": 4,
    "last_outcome_at": "2026-11-01T12:00:01+00:00",
    "finished_at": None,
    "discrepancy": None,
    "first_outcome_at": "2026-11-01T12:00:00+00:00",
}


def test_counters_add_up_latest_values_win_and_the_first_outcome_stays() -> None:
    delta = ActionDelta(
        chunks_done=1, succeeded=4, skipped=1, last_outcome_at="2026-11-01T12:00:09+00:00", first_outcome_at="later"
    )
    after = merged(STORED, delta)
    assert set(after) == set(MUTABLE)
    assert (after["chunks_done"], after["succeeded"], after["failed"], after["skipped"]) == (2, 9, 1, 1)
    assert after["last_outcome_at"] == "2026-11-01T12:00:09+00:00"
    assert after["first_outcome_at"] == "2026-11-01T12:00:00+00:00"
    assert (after["status"], after["total"], after["finished_at"]) == ("PROCESSING", 20, None)


def test_a_delta_without_a_value_leaves_the_field_and_the_first_outcome_is_set_once() -> None:
    fresh = {**STORED, "first_outcome_at": None, "status": "QUEUEING"}
    after = merged(fresh, ActionDelta(status="COMPLETED", first_outcome_at="2026-11-01T12:00:05+00:00"))
    assert after["status"] == "COMPLETED" and after["first_outcome_at"] == "2026-11-01T12:00:05+00:00"
    assert after["total"] == 20 and after["succeeded"] == 5


@pytest.mark.parametrize(
    ("stored", "position", "expected", "refused"),
    [(10, 11, None, False), (10, 10, None, True), (10, 9, None, True), (10, 12, 10, False), (11, 12, 10, True)],
)
def test_a_batch_not_beyond_the_stored_position_or_computed_from_another_is_refused(
    stored: int, position: int, expected: int | None, refused: bool
) -> None:
    assert refuses_batch(stored, position, expected) is refused
