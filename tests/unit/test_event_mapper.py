"""FastMapper: parsed UUIDs and datetimes are reused across events, and the store of
them stays bounded."""

from __future__ import annotations

import typing
import zlib
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import JSONTranscoder, StoredEvent

from domain.bulk_action import BulkChunk
from infrastructure.events import mapper as mapper_module
from infrastructure.events.mapper import FastMapper

pytestmark = pytest.mark.unit


def _queued(action_id: UUID, at: datetime) -> BulkChunk.ChunkQueued:
    event = BulkChunk.queue(action_id, 0, 1, [{"row": 1}]).collect_events()[0]
    object.__setattr__(event, "timestamp", at)
    return typing.cast(BulkChunk.ChunkQueued, event)


def test_decoded_events_equal_the_stored_ones_and_share_repeated_values() -> None:
    mapper = FastMapper(JSONTranscoder())
    action_id, at = uuid4(), datetime(2026, 11, 29, 3, 40, tzinfo=UTC)
    first, second = (mapper.to_domain_event(mapper.to_stored_event(_queued(action_id, at))) for _ in range(2))
    assert (first.action_id, first.timestamp) == (action_id, at)
    assert first.action_id is second.action_id and first.timestamp is second.timestamp


def test_the_parsed_values_kept_stay_bounded() -> None:
    mapper = FastMapper(JSONTranscoder())
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(mapper_module._PARSED_MAX + 500):
        at = start + timedelta(seconds=n)
        decoded = mapper.to_domain_event(mapper.to_stored_event(_queued(uuid4(), at)))
        assert decoded.timestamp == at
    assert len(mapper_module._parsed_uuids) <= mapper_module._PARSED_MAX
    assert len(mapper_module._parsed_datetimes) <= mapper_module._PARSED_MAX


def test_a_large_state_is_stored_compressed_and_read_back_whole_beside_plain_json() -> None:
    mapper = FastMapper(JSONTranscoder())
    at = datetime(2026, 12, 1, tzinfo=UTC)
    records = [{"row": n, "email": f"person{n}@example.com", "first_name": "First"} for n in range(1, 1001)]
    large = BulkChunk.queue(uuid4(), 0, 1, records).collect_events()[0]
    small = _queued(uuid4(), at)
    stored_large, stored_small = mapper.to_stored_event(large), mapper.to_stored_event(small)
    assert zlib.decompress(stored_large.state).startswith(b"{")  # any zlib reader gets the JSON
    assert len(stored_large.state) * 4 < len(zlib.decompress(stored_large.state))
    assert stored_small.state.startswith(b"{")  # small states stay plain JSON
    assert mapper.to_domain_event(stored_large).records == records
    assert mapper.to_domain_event(stored_small).records == [{"row": 1}]


def _chunk(action_id: UUID, chunk_no: int, rows: int) -> BulkChunk.ChunkQueued:
    records = [{"row": n, "line": n + 1, "data": {"email": f"c{n}@example.com"}} for n in range(1, rows + 1)]
    return typing.cast(BulkChunk.ChunkQueued, BulkChunk.queue(action_id, chunk_no, 1, records).collect_events()[0])


@pytest.mark.parametrize("rows", [1, 1000])
def test_peek_reads_a_chunks_action_and_number_from_plain_and_compressed_states(rows: int) -> None:
    mapper = FastMapper(JSONTranscoder())
    action_id = uuid4()
    stored = mapper.to_stored_event(_chunk(action_id, 41, rows))
    assert stored.state[:1] == (b"{" if rows == 1 else b"x")  # 1000 records are compressed
    assert mapper.peek(stored, ("action_id", "chunk_no")) == {"action_id": str(action_id), "chunk_no": 41}


def test_peek_says_none_when_the_values_do_not_lead_the_state() -> None:
    mapper = FastMapper(JSONTranscoder())
    stored = mapper.to_stored_event(_chunk(uuid4(), 3, 1))
    # "records" comes after a nested value would: nothing past the leading plain values is read.
    assert mapper.peek(stored, ("action_id", "records")) is None
    assert mapper.peek(stored, ("action_id", "no_such_field")) is None
    nested_first = StoredEvent(stored.originator_id, 1, stored.topic, b'{"x":{"action_id":"a"},"chunk_no":1}')
    assert mapper.peek(nested_first, ("action_id", "chunk_no")) is None
