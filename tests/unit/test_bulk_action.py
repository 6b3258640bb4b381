from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from domain.bulk_action import (
    ActionStatus,
    BulkAction,
    BulkChunk,
    ChunkSummary,
    Outcome,
    RecordResult,
    action_id_for_key,
    chunk_id,
    entity_id_for,
    entity_id_head,
    entity_id_text,
    own_entity_id,
    record_outcomes,
)
from domain.errors import ActionAlreadyFinishedError, InputNotQueuedError

pytestmark = pytest.mark.unit


def _action(total: int | None = None, chunks: int | None = None) -> BulkAction:
    action = BulkAction.submit(uuid.uuid4(), "acc", "contact", "insert", None, {"kind": "inline"}, 2, 4)
    if total is not None and chunks is not None:
        action.mark_input_queued(total, chunks)
    return action


def test_a_new_action_is_queueing_until_its_input_is_queued() -> None:
    action = _action()
    assert action.status is ActionStatus.QUEUEING
    action.mark_input_queued(4, 2)
    assert action.status is ActionStatus.PROCESSING
    assert (action.total, action.chunk_count) == (4, 2)


def test_completion_sums_the_chunk_summaries() -> None:
    action = _action(4, 2)
    action.complete([ChunkSummary(0, 1, 1, 0), ChunkSummary(1, 1, 0, 1)])
    completed = action.collect_events()[-1]
    assert isinstance(completed, BulkAction.Completed)
    assert (completed.succeeded, completed.failed, completed.skipped, completed.discrepancy) == (2, 1, 1, None)
    assert action.status is ActionStatus.COMPLETED


def test_completion_records_a_count_mismatch_instead_of_hiding_it() -> None:
    action = _action(4, 2)
    action.complete([ChunkSummary(0, 1, 0, 0)])
    completed = action.collect_events()[-1]
    assert "1 chunk summaries for 2 chunks" in completed.discrepancy
    assert "!= total 4" in completed.discrepancy


def test_completion_before_the_input_is_queued_is_refused() -> None:
    with pytest.raises(InputNotQueuedError):
        _action().complete([])


def test_a_finished_action_takes_no_more_commands() -> None:
    action = _action(2, 1)
    action.cancel("stop")
    assert action.status is ActionStatus.CANCELLED
    with pytest.raises(ActionAlreadyFinishedError):
        action.cancel("again")
    with pytest.raises(ActionAlreadyFinishedError):
        action.complete([ChunkSummary(0, 2, 0, 0)])


def test_ids_are_deterministic_where_redelivery_needs_them() -> None:
    action_id = uuid.uuid4()
    assert chunk_id(action_id, 3) == chunk_id(action_id, 3) != chunk_id(action_id, 4)
    assert entity_id_for(action_id, 7) == entity_id_for(action_id, 7) != entity_id_for(action_id, 8)
    assert action_id_for_key("acc", "k") == action_id_for_key("acc", "k") != action_id_for_key("other", "k")


def test_entity_ids_of_one_action_ascend_with_the_row() -> None:
    action_id = uuid.uuid4()
    ids = [str(entity_id_for(action_id, row)) for row in (1, 2, 10, 999_999)]
    assert ids == sorted(ids)
    assert entity_id_for(action_id, 1).version == 8


def test_the_id_of_a_rows_own_entity_from_the_action_id_or_its_text() -> None:
    action_id = uuid.uuid4()
    for row in (1, 2, 999_999):
        assert own_entity_id(action_id, row) == own_entity_id(str(action_id), row) == str(entity_id_for(action_id, row))
    assert own_entity_id("not-an-action-id", 1) is None


def test_outcome_events_get_one_version_per_record_then_a_summary() -> None:
    action_id = uuid.uuid4()
    results = [
        RecordResult(1, 2, Outcome.SUCCEEDED, entity_id="e1", op="created"),
        RecordResult(2, 3, Outcome.FAILED, errors=[{"field": "email", "code": "missing", "message": "m"}]),
        RecordResult(3, 4, Outcome.SKIPPED, entity_id="e1", reason="duplicate", duplicate_of_row=1),
    ]
    events = record_outcomes(action_id, 5, results, datetime.now(UTC))
    assert [type(e).__name__ for e in events] == ["RecordSucceeded", "RecordFailed", "RecordSkipped", "ChunkProcessed"]
    assert [e.originator_version for e in events] == [2, 3, 4, 5]
    assert {e.originator_id for e in events} == {chunk_id(action_id, 5)}
    summary = events[-1]
    assert (summary.succeeded, summary.failed, summary.skipped) == (1, 1, 1)
    assert events[2].duplicate_of == "e1" and events[2].duplicate_of_row == 1


def test_a_chunk_stream_starts_with_its_input_records() -> None:
    action_id = uuid.uuid4()
    chunk = BulkChunk.queue(action_id, 0, 1, [{"row": 1, "data": {"email": "a@x.com"}}])
    [queued] = chunk.collect_events()
    assert queued.originator_id == chunk_id(action_id, 0) and queued.originator_version == 1
    assert queued.records[0]["data"] == {"email": "a@x.com"}


def test_a_created_event_of_v3_reads_as_neither_a_retry_nor_a_dry_run() -> None:
    from dataclasses import replace

    import orjson
    from eventsourcing.persistence import JSONTranscoder

    from infrastructure.events.mapper import FastMapper
    from infrastructure.stored_json import unpacked

    mapper = FastMapper(JSONTranscoder())
    created = _action().collect_events()[0]
    stored = mapper.to_stored_event(created)
    state = orjson.loads(unpacked(stored.state))
    assert (state["class_version"], state["retry_of"], state["dry_run"]) == (6, None, False)
    del state["retry_of"], state["dry_run"], state["column_mapping"], state["link_companies"]
    state["class_version"] = 3
    v3 = replace(stored, state=orjson.dumps(state))
    decoded = mapper.to_domain_event(v3)
    assert (decoded.retry_of, decoded.dry_run, decoded.callback_url) == (None, False, None)
    del state["callback_url"], state["actor"]
    state["class_version"] = 1
    decoded = mapper.to_domain_event(replace(stored, state=orjson.dumps(state)))
    assert (decoded.retry_of, decoded.dry_run, decoded.callback_url, decoded.actor) == (None, False, None, None)


def test_a_created_event_of_v4_reads_as_an_input_whose_columns_were_its_fields() -> None:
    from dataclasses import replace

    import orjson
    from eventsourcing.persistence import JSONTranscoder

    from infrastructure.events.mapper import FastMapper
    from infrastructure.stored_json import unpacked

    mapper = FastMapper(JSONTranscoder())
    mapping = {"E-mail Address": "email", "Notes": None}
    action = BulkAction.submit(
        uuid.uuid4(), "acc", "contact", "insert", None, {"kind": "file"}, 2, 4, column_mapping=mapping
    )
    stored = mapper.to_stored_event(action.collect_events()[0])
    assert mapper.to_domain_event(stored).column_mapping == mapping
    state = orjson.loads(unpacked(stored.state))
    del state["column_mapping"], state["link_companies"]
    state["class_version"] = 4
    assert mapper.to_domain_event(replace(stored, state=orjson.dumps(state))).column_mapping is None


def test_an_action_is_retried_once_and_only_when_finished() -> None:
    from domain.errors import ActionNotFinishedError, AlreadyRetriedError

    action = _action(4, 2)
    with pytest.raises(ActionNotFinishedError):
        action.start_retry(uuid.uuid4())
    action.complete([ChunkSummary(0, 2, 0, 0), ChunkSummary(1, 1, 1, 0)])
    first = uuid.uuid4()
    action.start_retry(first)
    assert action.retried_by == first
    with pytest.raises(AlreadyRetriedError, match=str(first)):
        action.start_retry(uuid.uuid4())
    retry = BulkAction.submit(uuid.uuid4(), "acc", "contact", "insert", None, {}, 2, 1, retry_of=action.id)
    assert retry.retry_of == action.id


@pytest.mark.parametrize("row", [0, 1, 999, 1_000_000, 2**40 + 7])
def test_entity_id_text_is_the_text_of_entity_id_for(row: int) -> None:
    action_id = uuid.uuid4()
    assert entity_id_text(entity_id_head(action_id), row) == str(entity_id_for(action_id, row))
