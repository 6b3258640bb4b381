"""SQLite application recorder that inserts a save's events with one ``executemany``.

The library's recorder runs one ``execute`` per event to read ``lastrowid``; a chunk
saves ~1000 outcome events at once, so we insert them in one call and derive their
notification ids from ``MAX(rowid)`` read inside the same write transaction (SQLite
gives each new row max(rowid)+1, and the write lock is held, so the ids are the
consecutive block ending at that maximum).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteFactory,
)
from eventsourcing.utils import Environment, EnvType


class BatchSQLiteApplicationRecorder(SQLiteApplicationRecorder):
    # Each row read back names its stream as text, which the library parses with
    # ``UUID()`` (a few microseconds in Python); a chunk's thousand outcomes share one
    # stream, so parsed ids are kept, a bounded number of them.
    _PARSED_IDS_MAX = 4096

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._parsed_ids: dict[str, UUID | str] = {}

    def convert_originator_id(self, originator_id: str) -> UUID | str:
        found = self._parsed_ids.get(originator_id)
        if found is None:
            if len(self._parsed_ids) >= self._PARSED_IDS_MAX:
                self._parsed_ids.clear()
            found = self._parsed_ids[originator_id] = super().convert_originator_id(originator_id)
        return found

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **_: Any) -> Sequence[int] | None:
        if not stored_events:
            return []
        params = [
            (
                s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id,
                s.originator_version,
                s.topic,
                s.state,
            )
            for s in stored_events
        ]
        c.executemany(self.insert_events_statement, params)
        last = self._max_notification_id(c)
        return list(range(last - len(params) + 1, last + 1))


class TunedSQLiteConnectionPool(SQLiteConnectionPool):
    """The library's pool, with the same pragmas as our other SQLite files.

    synchronous=NORMAL in WAL mode keeps every commit through a process crash (what
    SIGKILL tests exercise); only an OS crash or power loss can drop the last commits,
    which the idempotent chunk processing redoes on ``resume``. With the library's
    FULL, each chunk's commit waited for an fsync (measured: the largest single cost
    of the write path).
    """

    def _create_connection(self) -> SQLiteConnection:
        connection = super()._create_connection()
        raw = connection._sqlite_conn
        raw.execute("PRAGMA synchronous=NORMAL")
        raw.execute("PRAGMA wal_autocheckpoint=10000")
        raw.execute("PRAGMA cache_size=-8192")  # appends and per-chunk index runs: 8 MiB is plenty
        return connection


class EmbeddedSQLiteFactory(SQLiteFactory):
    """``eventsourcing.sqlite`` with the tuned pool (selected by PERSISTENCE_MODULE)."""

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        stock = self.datastore.pool
        self.datastore.pool = TunedSQLiteConnectionPool(db_name=stock.db_name, lock_timeout=stock.lock_timeout)
        stock.close()
