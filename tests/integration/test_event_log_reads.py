"""BulkActionLog.events_at: the events at given positions, read a run at a time."""

from __future__ import annotations

import uuid

import pytest

from domain.bulk_action import BulkChunk
from infrastructure.bootstrap import Container

pytestmark = pytest.mark.integration


def test_events_at_reads_exactly_the_positions_asked_near_or_far_apart(container: Container) -> None:
    action_id = uuid.uuid4()
    chunks = [BulkChunk.queue(action_id, n, n + 1, [{"row": n + 1, "data": {"n": n}}]) for n in range(300)]
    container.events.store_chunks(chunks)  # 300 events at positions 1..300
    head = container.events.head()
    assert head == 300
    # Runs of neighbours, gaps wider than a run, a repeat, and positions past the head.
    asked = [5, 3, 4, 70, 71, 150, 151, 214, 300, 4, 301, 1000]
    found = container.events.events_at(asked)
    assert [position for position, _ in found] == [3, 4, 5, 70, 71, 150, 151, 214, 300]
    assert [event.chunk_no for _, event in found] == [2, 3, 4, 69, 70, 149, 150, 213, 299]
    assert container.events.events_at([]) == []
