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
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor


class BatchSQLiteApplicationRecorder(SQLiteApplicationRecorder):
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
