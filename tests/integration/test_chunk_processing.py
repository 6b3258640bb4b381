"""The chunk use case on the embedded adapters: outcome semantics and idempotency."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from application.chunk_processing import ChunkDecider, ChunkProcessor
from application.event_store import BulkActionLog
from application.faults import StoreUnavailableError
from domain.bulk_action import BulkAction, BulkChunk, Outcome, entity_id_for
from infrastructure.bootstrap import SystemClock, event_store_env, fault_policy
from infrastructure.settings import Settings
from infrastructure.sqlite.entities import SQLiteEntityStore
from infrastructure.stored_json import ENTITY_DATA_KEY_FIRST, unpacked

pytestmark = pytest.mark.integration

ACCOUNT = "acc"
FAULTS = fault_policy(Settings())


@pytest.fixture
def entities(tmp_path: Path) -> Any:
    store = SQLiteEntityStore(tmp_path / "entities.db")
    yield store
    store.close()


def _records(*datas: dict[str, Any] | str) -> list[dict[str, Any]]:
    out = []
    for row, data in enumerate(datas, start=1):
        out.append(
            {"row": row, "line": row + 1, "error": data}
            if isinstance(data, str)
            else {"row": row, "line": row + 1, "data": data}
        )
    return out


def _decide(
    entities: Any,
    action: str,
    records: list[dict[str, Any]],
    match_by: str | None = None,
    action_id: uuid.UUID | None = None,
) -> list[Any]:
    return ChunkDecider(
        entities,
        ACCOUNT,
        action_id or uuid.uuid4(),
        "contact",
        action,
        match_by,
        is_infrastructure=FAULTS.is_infrastructure,
    ).decide(records)


def test_insert_outcomes_cover_success_failure_and_both_kinds_of_duplicate(entities: Any) -> None:
    _decide(entities, "insert", _records({"email": "taken@x.com"}))
    results = _decide(
        entities,
        "insert",
        _records(
            {"email": "New@x.com"},
            {"email": "bad"},
            {"email": "new@X.com"},
            {"email": "taken@x.com"},
            "row has 1 fields",
        ),
    )
    assert [r.outcome for r in results] == [
        Outcome.SUCCEEDED,
        Outcome.FAILED,
        Outcome.SKIPPED,
        Outcome.SKIPPED,
        Outcome.FAILED,
    ]
    assert results[0].op == "created"
    assert results[2].duplicate_of_row == 1 and "(row 1 of this input)" in results[2].reason
    assert results[2].entity_id == results[0].entity_id
    assert results[3].duplicate_of_row is None and "taken@x.com" in results[3].reason
    assert results[4].errors == [{"field": "record", "code": "unparseable", "message": "row has 1 fields"}]
    assert entities.count(ACCOUNT, "contact") == 2


def test_a_record_that_failed_while_being_read_fails_with_the_code_it_was_stored_with(entities: Any) -> None:
    records = [
        {"row": 1, "line": 2, "error": "row has 1 fields"},  # stored before codes were stored
        {"row": 2, "line": 3, "error": "the key 'email' is given twice in one object", "code": "duplicate_field"},
    ]
    results = _decide(entities, "insert", records)
    assert [r.errors for r in results] == [
        [{"field": "record", "code": "unparseable", "message": "row has 1 fields"}],
        [{"field": "record", "code": "duplicate_field", "message": "the key 'email' is given twice in one object"}],
    ]


def test_update_by_unique_field_changes_only_the_given_fields(entities: Any) -> None:
    [created] = _decide(entities, "insert", _records({"email": "a@x.com", "first_name": "Ann", "last_name": "Lee"}))
    results = _decide(
        entities, "update", _records({"email": "A@x.com", "first_name": "Anne"}, {"email": "ghost@x.com"})
    )
    assert [r.outcome for r in results] == [Outcome.SUCCEEDED, Outcome.FAILED]
    assert results[0].op == "updated"
    assert results[1].errors[0]["code"] == "not_found"
    assert entities.get(ACCOUNT, "contact", created.entity_id) == {
        "email": "a@x.com",
        "first_name": "Anne",
        "last_name": "Lee",
    }


def test_update_by_id_can_change_the_unique_field_unless_it_is_taken(entities: Any) -> None:
    first, second = _decide(entities, "insert", _records({"email": "a@x.com"}, {"email": "b@x.com"}))
    results = _decide(
        entities,
        "update",
        _records(
            {"id": first.entity_id, "email": "c@x.com"},
            {"id": second.entity_id, "email": "c@x.com"},
            {"email": "x@x.com"},
        ),
        match_by="id",
    )
    assert [r.outcome for r in results] == [Outcome.SUCCEEDED, Outcome.SKIPPED, Outcome.FAILED]
    assert results[2].errors[0] == {"field": "id", "code": "missing", "message": "UPDATE needs 'id' to find the record"}
    assert entities.get(ACCOUNT, "contact", first.entity_id)["email"] == "c@x.com"


def test_upsert_inserts_new_keys_and_updates_existing_ones_in_input_order(entities: Any) -> None:
    [existing] = _decide(entities, "insert", _records({"email": "old@x.com", "first_name": "Old"}))
    results = _decide(
        entities,
        "upsert",
        _records(
            {"email": "old@x.com", "first_name": "Updated"},
            {"email": "new@x.com", "first_name": "One"},
            {"email": "NEW@x.com", "first_name": "Two"},
        ),
    )
    assert [(r.outcome, r.op) for r in results] == [
        (Outcome.SUCCEEDED, "updated"),
        (Outcome.SUCCEEDED, "created"),
        (Outcome.SUCCEEDED, "updated"),
    ]
    assert results[1].entity_id == results[2].entity_id
    assert entities.get(ACCOUNT, "contact", existing.entity_id)["first_name"] == "Updated"
    assert entities.get(ACCOUNT, "contact", results[1].entity_id)["first_name"] == "Two"


@pytest.mark.parametrize("action", ["insert", "upsert"])
def test_deciding_a_chunk_again_after_a_crash_gives_the_same_outcomes_and_no_new_entity(
    entities: Any, action: str
) -> None:
    action_id = uuid.uuid4()
    records = _records({"email": "a@x.com"}, {"email": "a@x.com"}, {"email": "bad"}, {"email": "b@x.com"})
    first = _decide(entities, action, records, action_id=action_id)
    again = _decide(entities, action, records, action_id=action_id)
    summary = [(r.outcome, r.entity_id, r.op) for r in first]
    assert [(r.outcome, r.entity_id, r.op) for r in again] == summary
    assert entities.count(ACCOUNT, "contact") == 2
    assert first[0].entity_id == str(entity_id_for(action_id, 1))


def test_a_store_failure_on_one_record_fails_that_record_and_the_rest_go_on(
    entities: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_insert = entities.insert_many

    def insert_refusing_one(account_id: str, entity_type: str, items: list[Any]) -> list[Any]:
        if any(i.unique_key == "boom@x.com" for i in items):
            raise RuntimeError("disk on fire")
        return real_insert(account_id, entity_type, items)

    monkeypatch.setattr(entities, "insert_many", insert_refusing_one)
    results = _decide(entities, "insert", _records({"email": "a@x.com"}, {"email": "boom@x.com"}, {"email": "c@x.com"}))
    assert [r.outcome for r in results] == [Outcome.SUCCEEDED, Outcome.FAILED, Outcome.SUCCEEDED]
    assert results[1].errors[0]["code"] == "system_error"
    assert "disk on fire" in results[1].errors[0]["message"]


def test_processing_a_chunk_twice_stores_its_outcomes_once(tmp_path: Path, entities: Any) -> None:
    events = BulkActionLog(env=event_store_env(Settings(data_dir=tmp_path)))
    action = BulkAction.submit(uuid.uuid4(), "acc", "contact", "insert", None, {"kind": "inline"}, 10, 2)
    events.create_action(action)
    events.store_chunks([BulkChunk.queue(action.id, 0, 1, _records({"email": "a@x.com"}, {"email": "b"}))])
    processor = ChunkProcessor(events, entities, SystemClock(), FAULTS)
    assert processor.process(action.id, 0) == "processed"
    assert processor.process(action.id, 0) == "duplicate"
    assert [type(e).__name__ for e in events.chunk_events(action.id, 0)] == [
        "ChunkQueued",
        "RecordSucceeded",
        "RecordFailed",
        "ChunkProcessed",
    ]
    events.close()


def test_a_full_entity_store_is_an_infrastructure_fault_of_the_chunk_never_a_records_outcome(entities: Any) -> None:
    # A real SQLITE_FULL ("database or disk is full"): the file may not grow past its pages.
    conn = entities.db.connection()
    conn.execute(f"PRAGMA max_page_count={conn.execute('PRAGMA page_count').fetchone()[0]}")
    many = _records(*({"email": f"u{n}@x.com", "first_name": "x" * 200} for n in range(500)))

    with pytest.raises(StoreUnavailableError, match="database or disk is full"):
        _decide(entities, "insert", many)

    conn.execute("PRAGMA max_page_count=1073741823")  # space is back: the same chunk succeeds whole
    assert {r.outcome for r in _decide(entities, "insert", many)} == {Outcome.SUCCEEDED}


def test_entity_data_is_stored_as_a_zstd_frame_and_plain_json_stored_before_is_read_and_updated(entities: Any) -> None:
    inserted = _decide(entities, "insert", _records({"email": "new@x.com", "first_name": "Ada"}))
    assert inserted[0].outcome is Outcome.SUCCEEDED
    conn = entities.db.connection()
    (stored,) = conn.execute("SELECT data FROM entities WHERE unique_key='new@x.com'").fetchone()
    assert stored[0] == ENTITY_DATA_KEY_FIRST.tag and len(stored) < len(b'{"email":"new@x.com","first_name":"Ada"}')
    # The unique key is the row's unique_key column: the data holds its field as null.
    assert orjson.loads(unpacked(stored)) == {"email": None, "first_name": "Ada"}
    assert entities.get(ACCOUNT, "contact", inserted[0].entity_id) == {"email": "new@x.com", "first_name": "Ada"}
    # A row written before data was compressed: plain JSON, read and updated as any other.
    with entities.db.write() as writing:
        writing.execute(
            "UPDATE entities SET data=? WHERE unique_key='new@x.com'", (b'{"email":"new@x.com","first_name":"Old"}',)
        )
    updated = _decide(entities, "update", _records({"email": "new@x.com", "first_name": "Bea"}))
    assert (updated[0].op, updated[0].changes) == ("updated", {"first_name": ["Old", "Bea"]})
    assert entities.get(ACCOUNT, "contact", updated[0].entity_id) == {"email": "new@x.com", "first_name": "Bea"}
