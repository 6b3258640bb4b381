"""SQLite application recorder: a compact table layout, and a save's events inserted
with one ``executemany``.

Layout. The library's table names each event's stream by its id as text and its topic
as text (32 + ~44 bytes a row, and the stream id again in the primary-key index). A
chunk's thousand outcome events share one stream and a handful of topics, so streams
and topics are named once, in ``event_streams`` and ``event_topics``, and each event
row holds their small integer keys: 310 -> ~200 bytes an outcome event, measured in
docs/benchmarks.md. ``events.notification_id`` is the row id, as the library's
``rowid`` was. A store written with the library's ``stored_events`` table is converted
in place when it is opened (same notification ids, same stored states).

Keys are cached per recorder. A stream or topic named inside a write transaction is
cached only once that transaction has committed: a rolled-back key may be given to
another name by the next writer.

Batch insert. The library's recorder runs one ``execute`` per event to read
``lastrowid``; a chunk saves ~1000 outcome events at once, so we insert them in one call
and derive their notification ids from ``MAX(notification_id)`` read inside the same
write transaction (SQLite gives each new row max+1, and the write lock is held, so the
ids are the consecutive block ending at that maximum).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteDatastore,
    SQLiteFactory,
)
from eventsourcing.utils import Environment, EnvType

from infrastructure.sqlite.names import NameKeys

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS events (notification_id INTEGER PRIMARY KEY, stream INTEGER NOT NULL,"
    " version INTEGER NOT NULL, topic INTEGER NOT NULL, state BLOB NOT NULL)",
    "CREATE UNIQUE INDEX IF NOT EXISTS events_by_stream ON events (stream, version)",
]
# The library's layout, which stores written before this one hold.
_LIBRARY_TABLE = "stored_events"
_FROM_LIBRARY_LAYOUT = [
    f"INSERT OR IGNORE INTO event_topics (name) SELECT DISTINCT topic FROM {_LIBRARY_TABLE} ORDER BY topic",
    "INSERT OR IGNORE INTO event_streams (originator_id)"
    f" SELECT originator_id FROM {_LIBRARY_TABLE} GROUP BY originator_id ORDER BY MIN(rowid)",
    "INSERT INTO events (notification_id, stream, version, topic, state)"
    " SELECT e.rowid, s.stream, e.originator_version, t.topic, e.state"
    f" FROM {_LIBRARY_TABLE} e JOIN event_streams s ON s.originator_id = e.originator_id"
    " JOIN event_topics t ON t.name = e.topic ORDER BY e.rowid",
    f"DROP TABLE {_LIBRARY_TABLE}",
]


def _stream_text(originator_id: UUID | str) -> str:
    # As the library wrote it (UUIDs as 32 hex digits), so converted stores match.
    return originator_id.hex if isinstance(originator_id, UUID) else originator_id


class BatchSQLiteApplicationRecorder(SQLiteApplicationRecorder):
    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "events") -> None:
        # Streams are an action's and its chunks' (one per 1000 records): the default
        # bound keeps those in use; topics are a few dozen. (Made first: the library's
        # constructor asks for the schema.)
        self._streams = NameKeys("event_streams", "stream", "originator_id", self.convert_originator_id)
        self._topics = NameKeys("event_topics", "topic", "name", str)
        super().__init__(datastore, events_table_name)
        self.insert_events_statement = "INSERT INTO events (stream, version, topic, state) VALUES (?,?,?,?)"
        self.select_max_notification_id_statement = "SELECT MAX(notification_id) FROM events"
        # What the save in progress on this thread named (threads share the recorder).
        self._named = threading.local()

    def construct_create_table_statements(self) -> list[str]:
        return [self._streams.schema, self._topics.schema, *SCHEMA]

    def create_table(self) -> None:
        # BEGIN IMMEDIATE: two processes open a data dir together, and the one that finds
        # the library's table converts it while the other waits, then finds it gone.
        with self.datastore.get_connection(commit=True) as connection:
            raw = connection._sqlite_conn
            raw.execute("BEGIN IMMEDIATE")
            try:
                for statement in self.create_table_statements:
                    raw.execute(statement)
                found = raw.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (_LIBRARY_TABLE,))
                if found.fetchone():
                    for statement in _FROM_LIBRARY_LAYOUT:
                        raw.execute(statement)
                raw.execute("COMMIT")
            except BaseException:
                raw.execute("ROLLBACK")
                raise

    # ------------------------------------------------------------------ writes

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        self._named.streams = self._named.topics = None
        ids = super().insert_events(stored_events, **kwargs)
        for names, named in ((self._streams, self._named.streams), (self._topics, self._named.topics)):
            if named is not None:  # committed: kept from now on
                names.remember(named.made)
        return ids

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **_: Any) -> Sequence[int] | None:
        if not stored_events:
            return []
        texts = [_stream_text(s.originator_id) for s in stored_events]
        self._named.streams = self._streams.in_write(c.sqlite_cursor)
        self._named.topics = self._topics.in_write(c.sqlite_cursor)
        streams = self._named.streams.keys_made(set(texts))
        topics = self._named.topics.keys_made({s.topic for s in stored_events})
        params = [
            (streams[text], s.originator_version, topics[s.topic], s.state)
            for text, s in zip(texts, stored_events, strict=True)
        ]
        c.executemany(self.insert_events_statement, params)
        last = self._max_notification_id(c)
        return list(range(last - len(params) + 1, last + 1))

    # ------------------------------------------------------------------ reads

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        statement = "SELECT version, topic, state FROM events WHERE stream=? "
        with self.datastore.transaction(commit=False) as c:
            stream = self._streams.key(c.sqlite_cursor, _stream_text(originator_id))
            if stream is None:
                return []
            params: list[Any] = [stream]
            if gt is not None:
                statement += "AND version>? "
                params.append(gt)
            if lte is not None:
                statement += "AND version<=? "
                params.append(lte)
            statement += "ORDER BY version DESC " if desc else "ORDER BY version ASC "
            if limit is not None:
                statement += "LIMIT ? "
                params.append(limit)
            c.execute(statement, params)
            rows, sql = c.fetchall(), c.sqlite_cursor
            return [StoredEvent(originator_id, row[0], self._topics.name(sql, row[1]), row[2]) for row in rows]

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        conditions: list[str] = []
        params: list[Any] = []
        if start is not None:
            conditions.append("notification_id>=?" if inclusive_of_start else "notification_id>?")
            params.append(start)
        if stop is not None:
            conditions.append("notification_id<=?")
            params.append(stop)
        if topics:
            conditions.append(
                f"topic IN (SELECT topic FROM event_topics WHERE name IN ({','.join('?' * len(topics))}))"
            )
            params += list(topics)
        where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
        statement = (
            f"SELECT notification_id, stream, version, topic, state FROM events {where}ORDER BY notification_id LIMIT ?"
        )
        params.append(limit)
        with self.datastore.transaction(commit=False) as c:
            c.execute(statement, params)
            rows = c.fetchall()
            return [
                Notification(
                    id=row[0],
                    originator_id=self._streams.name(c.sqlite_cursor, row[1]),
                    originator_version=row[2],
                    topic=self._topics.name(c.sqlite_cursor, row[3]),
                    state=row[4],
                )
                for row in rows
            ]


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
