"""Log-follower positions and single-active locks on PostgreSQL.

``PostgresPositionStore`` is where the relay remembers how far it has published, in
the same database (and schema) as the events it follows.

``SingleActiveLock`` lets several relay or projector processes run at once on
different machines with exactly one active: the active one holds a session-level
advisory lock on its own connection; the server releases it the moment that
connection dies (process killed, machine gone), and a standby's next
``try_acquire`` takes over.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading

import psycopg

from infrastructure.postgres.event_store import schema_of
from infrastructure.postgres.recorder import DDL_LOCK_KEY

_CREATE = "CREATE TABLE IF NOT EXISTS bulk_positions (name TEXT PRIMARY KEY, position BIGINT NOT NULL)"
_UPSERT = (
    "INSERT INTO bulk_positions (name, position) VALUES (%s, %s) "
    "ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position"
)


class PostgresPositionStore:
    """One autocommit connection, reopened after a failure; safe across threads."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._lock = threading.Lock()
        self._conn: psycopg.Connection | None = None
        with self._lock:
            conn = self._connection()
            # Concurrent CREATE ... IF NOT EXISTS can still collide in the catalog when
            # processes start together: take turns (same lock as the events table DDL).
            conn.execute("SELECT pg_advisory_lock(%s)", (DDL_LOCK_KEY,))
            try:
                conn.execute(_CREATE)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (DDL_LOCK_KEY,))

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=10)
        return self._conn

    def _run(self, sql: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
        with self._lock:
            for attempt in (1, 2):
                try:
                    cursor = self._connection().execute(sql, params)
                    return cursor.fetchall() if cursor.description else []
                except psycopg.OperationalError:
                    # A dropped connection (server restart): reconnect once, then give up.
                    self._discard()
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    def get(self, name: str) -> int:
        rows = self._run("SELECT position FROM bulk_positions WHERE name = %s", (name,))
        return int(str(rows[0][0])) if rows else 0

    def set(self, name: str, position: int) -> None:
        self._run(_UPSERT, (name, position))

    def _discard(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self._discard()


def advisory_key(dsn: str, name: str) -> int:
    """A stable signed 64-bit key per (schema, role), so test schemas never collide."""
    digest = hashlib.blake2b(f"{schema_of(dsn)}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class SingleActiveLock:
    """A session advisory lock held on a dedicated connection."""

    def __init__(self, dsn: str, name: str) -> None:
        self.dsn = dsn
        self.name = name
        self.key = advisory_key(dsn, name)
        self._conn: psycopg.Connection | None = None

    def try_acquire(self) -> bool:
        """Whether this session holds the lock now; raises if PostgreSQL cannot be
        reached (the caller says so once per outage, not once per poll)."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=10)
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        except psycopg.Error:
            self.release()
            raise
        return bool(row and row[0])

    def still_held(self) -> bool:
        """False once the lock's connection is gone: another process may hold it now."""
        if self._conn is None or self._conn.closed:
            return False
        try:
            row = self._conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
                " AND objid = (%s::bigint & 4294967295)::oid AND granted",
                (self.key,),
            ).fetchone()
        except psycopg.OperationalError:
            self.release()
            return False
        return bool(row and int(row[0]) > 0)

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()  # ends the session, which releases the lock
            self._conn = None
