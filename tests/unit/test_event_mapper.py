"""FastMapper: parsed UUIDs and datetimes are reused across events, and the store of
them stays bounded; states are stored compressed and read back whichever way they
were stored."""

from __future__ import annotations

import hashlib
import typing
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import orjson
import pytest
import zstandard
from eventsourcing.persistence import JSONTranscoder, MapperDeserialisationError, StoredEvent

from domain.bulk_action import BulkChunk, Outcome, RecordResult, entity_id_for, record_outcomes
from infrastructure import stored_json
from infrastructure.events import mapper as mapper_module
from infrastructure.events.mapper import FastMapper
from infrastructure.stored_json import (
    ENTITY_DATA,
    EVENT_STATES,
    FRAMED_DICTIONARY_ID,
    dictionary_data,
    framed_dictionary,
    packed,
    unpacked,
)

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

pytestmark = pytest.mark.unit


def _queued(action_id: UUID, at: datetime) -> BulkChunk.ChunkQueued:
    event = BulkChunk.queue(action_id, 0, 1, [{"row": 1}]).collect_events()[0]
    object.__setattr__(event, "timestamp", at)
    return typing.cast(BulkChunk.ChunkQueued, event)


def _topic_of_queued() -> str:
    return FastMapper(JSONTranscoder()).to_stored_event(_queued(uuid4(), datetime.now(UTC))).topic


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


def test_large_and_small_states_are_stored_compressed_and_read_back_whole() -> None:
    mapper = FastMapper(JSONTranscoder())
    at = datetime(2026, 12, 1, tzinfo=UTC)
    records = [{"row": n, "email": f"person{n}@example.com", "first_name": "First"} for n in range(1, 1001)]
    large = BulkChunk.queue(uuid4(), 0, 1, records).collect_events()[0]
    small = _queued(uuid4(), at)
    stored_large, stored_small = mapper.to_stored_event(large), mapper.to_stored_event(small)
    # A large state is tag 0x03 and a zstd frame without its magic number (no dictionary).
    assert stored_large.state[0] == 0x03
    large_json = zstandard.ZstdDecompressor().decompress(ZSTD_MAGIC + stored_large.state[1:])
    assert large_json.startswith(b"{") and len(stored_large.state) * 4 < len(large_json)
    # A small state is its dictionary's tag, then a zstd frame without its magic number:
    # any zstd reader with the dictionary's file gets the JSON back once it is put back.
    assert stored_small.state[0] == EVENT_STATES.tag
    frame = ZSTD_MAGIC + stored_small.state[1:]
    plain = zstandard.ZstdDecompressor(dict_data=dictionary_data(EVENT_STATES.file)).decompress(frame)
    assert orjson.loads(plain)["records"] == [{"row": 1}]
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
    assert stored.state[0] == (EVENT_STATES.tag if rows == 1 else 0x03)  # with the dictionary; 1000 records: none
    assert mapper.peek(stored, ("action_id", "chunk_no")) == {"action_id": str(action_id), "chunk_no": 41}


def test_peek_says_none_when_the_values_do_not_lead_the_state() -> None:
    mapper = FastMapper(JSONTranscoder())
    stored = mapper.to_stored_event(_chunk(uuid4(), 3, 1))
    # "records" comes after a nested value would: nothing past the leading plain values is read.
    assert mapper.peek(stored, ("action_id", "records")) is None
    assert mapper.peek(stored, ("action_id", "no_such_field")) is None
    nested_first = StoredEvent(stored.originator_id, 1, stored.topic, b'{"x":{"action_id":"a"},"chunk_no":1}')
    assert mapper.peek(nested_first, ("action_id", "chunk_no")) is None


@pytest.mark.parametrize(
    ("file", "sha256"),
    [
        (
            f"state-dictionary-{FRAMED_DICTIONARY_ID}.zstd-dict",
            "3e3ad2e2921ad237ca43d402f2954d08bd7c54389a6668acac584176b8c5b5c8",
        ),
        (EVENT_STATES.file, "b685190564fe36c627fd36364437330d3010f45aae5ad53d360745372f12663d"),
        (ENTITY_DATA.file, "d553ffda9085ab86eba58cc99c32547a6e80461437f1062680825329c56de578"),
    ],
)
def test_the_dictionaries_in_use_never_change(file: str, sha256: str) -> None:
    """Stored values name their dictionary (by tag, or by id in a whole frame): changing
    the file behind one would make every value stored with it unreadable. A new
    dictionary gets a new tag, id and file."""
    digest = hashlib.sha256(Path(stored_json.__file__).with_name(file).read_bytes()).hexdigest()
    assert digest == sha256


def test_states_stored_as_whole_zstd_frames_by_the_release_before_are_read() -> None:
    mapper = FastMapper(JSONTranscoder())
    action_id = uuid4()
    stored = mapper.to_stored_event(_chunk(action_id, 3, 2))
    json = unpacked(stored.state)
    # As the release before stored it: a frame naming dictionary 20261201 by id.
    framed = zstandard.ZstdCompressor(level=1, dict_data=framed_dictionary(), write_dict_id=True).compress(json)
    before = StoredEvent(stored.originator_id, stored.originator_version, stored.topic, framed)
    assert framed[0] == 0x28
    assert mapper.to_domain_event(before).records == mapper.to_domain_event(stored).records
    assert mapper.peek(before, ("action_id", "chunk_no")) == {"action_id": str(action_id), "chunk_no": 3}


def test_a_chunks_input_stored_with_zlib_by_the_release_before_is_read_and_peeked() -> None:
    mapper = FastMapper(JSONTranscoder())
    action_id = uuid4()
    stored = mapper.to_stored_event(_chunk(action_id, 12, 1000))
    before = StoredEvent(stored.originator_id, 1, stored.topic, zlib.compress(unpacked(stored.state), 1))
    assert mapper.to_domain_event(before).records == mapper.to_domain_event(stored).records
    assert mapper.peek(before, ("action_id", "chunk_no")) == {"action_id": str(action_id), "chunk_no": 12}


def test_entity_data_is_stored_with_its_own_dictionary_and_read_back() -> None:
    data = orjson.dumps({"email": "ann@example.com", "first_name": "Ann", "phone": "+1 555 0100"})
    stored = packed(data, ENTITY_DATA)
    assert stored[0] == ENTITY_DATA.tag and len(stored) < len(data)
    assert unpacked(stored) == data
    frame = ZSTD_MAGIC + stored[1:]
    assert zstandard.ZstdDecompressor(dict_data=dictionary_data(ENTITY_DATA.file)).decompress(frame) == data


def test_states_stored_as_plain_json_before_are_read_as_they_were() -> None:
    mapper = FastMapper(JSONTranscoder())
    action_id = uuid4()
    stored = mapper.to_stored_event(_chunk(action_id, 3, 2))
    plain = StoredEvent(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=unpacked(stored.state),
    )
    assert plain.state.startswith(b"{")
    assert mapper.to_domain_event(plain).records == mapper.to_domain_event(stored).records
    assert mapper.peek(plain, ("action_id", "chunk_no")) == {"action_id": str(action_id), "chunk_no": 3}


def test_a_state_compressed_with_another_dictionary_is_refused_with_its_place() -> None:
    samples = [orjson.dumps({"chunk_no": n, "note": f"another dictionary {n % 7}"}) for n in range(2000)]
    other = zstandard.train_dictionary(1024, samples, dict_id=FRAMED_DICTIONARY_ID + 1)
    state = zstandard.ZstdCompressor(dict_data=other, write_dict_id=True).compress(samples[5])
    stored = StoredEvent(originator_id=uuid4(), originator_version=7, topic=_topic_of_queued(), state=state)
    with pytest.raises(MapperDeserialisationError, match="v7 of"):
        FastMapper(JSONTranscoder()).to_domain_event(stored)


def test_an_outcome_stores_no_entity_id_its_action_and_row_name_and_decodes_it() -> None:
    mapper = FastMapper(JSONTranscoder())
    action_id = uuid4()
    own, other = str(entity_id_for(action_id, 5)), str(uuid4())
    results = [
        RecordResult(5, 6, Outcome.SUCCEEDED, entity_id=own, op="created"),
        RecordResult(6, 7, Outcome.SUCCEEDED, entity_id=other, op="updated"),
    ]
    inserted, updated = record_outcomes(action_id, 0, results, datetime(2026, 12, 1, tzinfo=UTC))[:2]
    stored_inserted, stored_updated = mapper.to_stored_event(inserted), mapper.to_stored_event(updated)
    assert "entity_id" not in orjson.loads(unpacked(stored_inserted.state))
    assert orjson.loads(unpacked(stored_updated.state))["entity_id"] == other
    assert mapper.to_domain_event(stored_inserted) == inserted
    assert mapper.to_domain_event(stored_inserted).entity_id == own
    assert mapper.to_domain_event(stored_updated).entity_id == other
