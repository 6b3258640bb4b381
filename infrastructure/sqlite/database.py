"""Thread-local SQLite connections in WAL mode, with explicit write transactions."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def statements(schema: str) -> list[str]:
    """The statements of a schema script, one per ``;``."""
    return [s.strip() for s in schema.split(";") if s.strip()]


class SQLiteDatabase:
    def __init__(self, path: Path | str, *, schema: str = "", busy_timeout_s: float = 30.0, cache_mib: int = 8) -> None:
        self.path = str(path)
        self.busy_timeout_s = busy_timeout_s
        self.cache_mib = cache_mib
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        if schema:
            self.apply_schema(schema)

    def apply_schema(self, schema: str) -> None:
        with self.write() as conn:
            for statement in statements(schema):
                conn.execute(statement)

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=self.busy_timeout_s, check_same_thread=False
            )
            self._use_wal(conn)
            # WAL with synchronous=NORMAL is durable against process crashes (what the
            # SIGKILL tests exercise); only an OS crash can lose the last commits.
            conn.execute("PRAGMA synchronous=NORMAL")
            # Checkpoint the WAL every ~40 MB instead of every 4 MB: each checkpoint
            # syncs the database file, and per-chunk commits made that the main cost.
            conn.execute("PRAGMA wal_autocheckpoint=10000")
            # Page cache per connection: small for append-mostly files; memory must stay flat.
            conn.execute(f"PRAGMA cache_size=-{self.cache_mib * 1024}")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Switch a new file to WAL. The switch needs an exclusive lock and SQLite does
        not wait for it (no busy handler), so processes that start together on a fresh
        data dir got "database is locked": retry until the busy timeout."""
        deadline = time.monotonic() + self.busy_timeout_s
        delay = 0.005
        while conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            try:
                conn.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.2)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: take the write lock up front so read-then-write is atomic."""
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            self._abandon(conn)
            raise

    def _abandon(self, conn: sqlite3.Connection) -> None:
        """Roll back a failed transaction. SQLite rolls back by itself on some errors (a
        full disk), and a second ROLLBACK would raise and hide the error that matters;
        a connection that cannot even roll back is dropped, so the next write starts
        on a fresh one instead of "cannot start a transaction within a transaction"."""
        if not conn.in_transaction:
            return
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            self._local.conn = None
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """One consistent snapshot for several selects."""
        conn = self.connection()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("ROLLBACK")

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
        self._local = threading.local()
