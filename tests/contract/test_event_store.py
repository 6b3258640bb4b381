"""Contract of the event store (the eventsourcing application over each persistence)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from application.event_store import BulkActionLog
from domain.bulk_action import BulkAction, BulkChunk, Outcome, RecordResult, record_outcomes

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _action(event_log: BulkActionLog) -> BulkAction:
    action = BulkAction.submit(uuid.uuid4(), "acc", "contact", "insert", None, {"kind": "inline"}, 2, 3)
    assert event_log.create_action(action)
    return action


def _outcomes(action_id: uuid.UUID, chunk_no: int, rows: list[int]) -> list:
    results = [RecordResult(r, r + 1, Outcome.SUCCEEDED, entity_id=f"e{r}", op="created") for r in rows]
    return record_outcomes(action_id, chunk_no, results, NOW)


def test_an_action_is_stored_once_under_its_id(event_log: BulkActionLog) -> None:
    action = _action(event_log)
    again = BulkAction.submit(action.id, "acc", "contact", "insert", None, {}, 2, 3)
    assert not event_log.create_action(again)
    assert event_log.get_action(action.id).account_id == "acc"


def test_chunks_and_their_outcomes_are_read_back(event_log: BulkActionLog) -> None:
    action = _action(event_log)
    event_log.store_chunks([BulkChunk.queue(action.id, 0, 1, [{"row": 1}, {"row": 2}])])
    assert event_log.chunk_queued(action.id, 0).records == [{"row": 1}, {"row": 2}]
    assert event_log.chunk_summary(action.id, 0) is None
    assert event_log.record_outcomes(_outcomes(action.id, 0, [1, 2]))
    summary = event_log.chunk_summary(action.id, 0)
    assert (summary.succeeded, summary.failed, summary.skipped) == (2, 0, 0)
    row_two = event_log.record_events(action.id, 0, 1)
    assert [type(e).__name__ for e in row_two] == ["ChunkQueued", "RecordSucceeded"]
    assert row_two[1].row == 2 and row_two[1].action_id == action.id


def test_saving_a_chunks_outcomes_twice_stores_nothing_the_second_time(event_log: BulkActionLog) -> None:
    action = _action(event_log)
    event_log.store_chunks([BulkChunk.queue(action.id, 0, 1, [{"row": 1}])])
    assert event_log.record_outcomes(_outcomes(action.id, 0, [1]))
    head = event_log.head()
    assert not event_log.record_outcomes(_outcomes(action.id, 0, [1]))
    assert event_log.head() == head
    assert len(event_log.chunk_events(action.id, 0)) == 3


def test_storing_chunks_again_keeps_the_stored_ones(event_log: BulkActionLog) -> None:
    action = _action(event_log)
    event_log.store_chunks([BulkChunk.queue(action.id, 0, 1, [{"row": 1}])])
    event_log.store_chunks(
        [BulkChunk.queue(action.id, 0, 1, [{"row": 99}]), BulkChunk.queue(action.id, 1, 2, [{"row": 2}])]
    )
    assert event_log.chunk_queued(action.id, 0).records == [{"row": 1}]
    assert event_log.chunk_queued(action.id, 1).records == [{"row": 2}]


def test_notifications_follow_the_order_of_saves_with_increasing_ids(event_log: BulkActionLog) -> None:
    start = event_log.head()
    action = _action(event_log)
    event_log.store_chunks([BulkChunk.queue(action.id, 0, 1, [{"row": 1}, {"row": 2}])])
    event_log.record_outcomes(_outcomes(action.id, 0, [1, 2]))
    followed = event_log.follow(start, 100)
    mine = [e for _, e in followed if e.originator_id in (action.id, BulkChunk.queue(action.id, 0, 1, []).id)]
    assert [type(e).__name__ for e in mine] == [
        "Created",
        "ChunkQueued",
        "RecordSucceeded",
        "RecordSucceeded",
        "ChunkProcessed",
    ]
    ids = [position for position, _ in followed]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert event_log.head() == ids[-1]
    assert event_log.follow(ids[1], 2)[0][0] == ids[2]
    assert [type(e).__name__ for _, e in event_log.follow(start, 100, kinds=[BulkChunk.ChunkQueued])] == ["ChunkQueued"]
    assert event_log.follow(start, 100, until=ids[1]) == followed[:2]


def test_the_mapper_restores_uuids_and_datetimes(event_log: BulkActionLog) -> None:
    action = _action(event_log)
    event_log.store_chunks([BulkChunk.queue(action.id, 0, 1, [{"row": 1}])])
    queued = event_log.chunk_queued(action.id, 0)
    assert queued.action_id == action.id
    assert queued.timestamp.tzinfo is not None


def test_ping_answers_and_the_head_is_the_last_notification(event_log: BulkActionLog) -> None:
    event_log.ping()
    before = event_log.head()
    _action(event_log)
    assert event_log.head() == before + 1
    assert event_log.follow(before, 10)[-1][0] == event_log.head()
