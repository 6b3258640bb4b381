"""The embedded event store's own table layout (``infrastructure.sqlite.event_recorder``):
the eventsourcing library's recorder tests, stores written in the library's layout
converted in place, and stream keys never cached from a rolled-back save."""

from __future__ import annotations

import sqlite3
import tempfile
import uuid
from pathlib import Path

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.tests import persistence as library

from infrastructure.sqlite.event_recorder import BatchSQLiteApplicationRecorder


def _recorder(path: Path, originator_id_type: str = "uuid") -> BatchSQLiteApplicationRecorder:
    datastore = SQLiteDatastore(str(path), lock_timeout=30, originator_id_type=originator_id_type)  # type: ignore[arg-type]
    recorder = BatchSQLiteApplicationRecorder(datastore)
    recorder.create_table()
    return recorder


class _RecorderInATemporaryFile:
    """What both library test cases need: a recorder on a file of their own."""

    def setUp(self) -> None:
        self._dir = tempfile.TemporaryDirectory()

    def tearDown(self) -> None:
        self._dir.cleanup()

    def create_recorder(self) -> BatchSQLiteApplicationRecorder:
        return _recorder(Path(self._dir.name) / "events.db")


class TestTheLibrarysApplicationRecorderTests(
    _RecorderInATemporaryFile, library.ApplicationRecorderTestCase[BatchSQLiteApplicationRecorder]
):
    pass


class TestTheLibrarysNonInterleavingTest(_RecorderInATemporaryFile, library.NonInterleavingNotificationIDsBaseCase):
    pass


def _event(originator_id: uuid.UUID, version: int, topic: str = "t:Event", state: bytes = b"{}") -> StoredEvent:
    return StoredEvent(originator_id=originator_id, originator_version=version, topic=topic, state=state)


def test_a_store_in_the_librarys_layout_is_converted_with_the_same_ids_and_states(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    first, second = uuid.uuid4(), uuid.uuid4()
    written = [
        (first.hex, 1, "a:Created", b"one"),
        (second.hex, 1, "a:Created", b"two"),
        (first.hex, 2, "a:Changed", b"three"),
    ]
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, topic TEXT,"
            " state BLOB, PRIMARY KEY (originator_id, originator_version))"
        )
        conn.executemany("INSERT INTO stored_events VALUES (?,?,?,?)", written)
        conn.execute("DELETE FROM stored_events WHERE rowid=2")  # ids with a gap stay as they were
        conn.execute(
            "INSERT INTO stored_events (rowid, originator_id, originator_version, topic, state) VALUES (7,?,1,?,?)",
            (second.hex, "a:Created", b"two"),
        )
    conn.close()

    recorder = _recorder(path)

    notes = recorder.select_notifications(None, 10)
    assert [(n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in notes] == [
        (1, first, 1, "a:Created", b"one"),
        (3, first, 2, "a:Changed", b"three"),
        (7, second, 1, "a:Created", b"two"),
    ]
    assert [e.state for e in recorder.select_events(first)] == [b"one", b"three"]
    assert recorder.max_notification_id() == 7
    with sqlite3.connect(path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert "stored_events" not in tables
    # The next save continues after the converted ones, and opening again converts nothing.
    assert recorder.insert_events([_event(second, 2)]) == [8]
    assert [n.id for n in _recorder(path).select_notifications(None, 10)] == [1, 3, 7, 8]


def test_a_stream_named_by_a_save_that_rolled_back_is_not_kept(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    mine, other, taken = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    recorder = _recorder(path)
    recorder.insert_events([_event(taken, 1)])
    # A save that names a new stream, then fails on a taken version: all of it rolls back.
    with pytest.raises(IntegrityError):
        recorder.insert_events([_event(mine, 1), _event(taken, 1)])
    # Another process names a stream now, and may be given the key the failed save used.
    _recorder(path).insert_events([_event(other, 1, state=b"other's")])
    recorder.insert_events([_event(mine, 1, state=b"mine")])

    fresh = _recorder(path)
    assert [e.state for e in fresh.select_events(mine)] == [b"mine"]
    assert [e.state for e in fresh.select_events(other)] == [b"other's"]
    assert [(n.originator_id, n.state) for n in fresh.select_notifications(None, 10)][1:] == [
        (other, b"other's"),
        (mine, b"mine"),
    ]


def test_notifications_filtered_by_topic_name(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path / "events.db")
    stream = uuid.uuid4()
    recorder.insert_events([_event(stream, 1, "a:One"), _event(stream, 2, "a:Two"), _event(stream, 3, "a:One")])
    assert [n.originator_version for n in recorder.select_notifications(None, 10, topics=["a:One"])] == [1, 3]
    assert recorder.select_notifications(None, 10, topics=["a:Unknown"]) == []


def test_text_originator_ids_round_trip(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path / "events.db", originator_id_type="text")
    recorder.insert_events([StoredEvent("name-1", 1, "a:One", b"x")])
    assert recorder.select_events("name-1")[0].originator_id == "name-1"
    assert recorder.select_notifications(None, 1)[0].originator_id == "name-1"
