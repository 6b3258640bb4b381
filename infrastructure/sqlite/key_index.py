"""A scratch SQLite file that remembers the first row of each unique key of one input.

On disk rather than in a dict so that memory stays flat however large the input is.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path


class SQLiteKeyIndex:
    def __init__(self, directory: Path | str) -> None:
        handle, self.path = tempfile.mkstemp(prefix="keys-", suffix=".db", dir=directory)
        os.close(handle)
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=OFF")
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.execute("CREATE TABLE first_rows (key TEXT PRIMARY KEY, row INTEGER NOT NULL) WITHOUT ROWID")

    def first_rows(self, keyed: Sequence[tuple[str, int]]) -> dict[int, int]:
        if not keyed:
            return {}
        self.conn.execute("BEGIN")
        self.conn.executemany("INSERT OR IGNORE INTO first_rows VALUES (?, ?)", keyed)
        seen: dict[str, int] = {}
        keys = list({key for key, _ in keyed})
        for start in range(0, len(keys), 900):
            batch = keys[start : start + 900]
            cur = self.conn.execute(
                f"SELECT key, row FROM first_rows WHERE key IN ({','.join('?' * len(batch))})", batch
            )
            seen.update(cur.fetchall())
        self.conn.execute("COMMIT")
        return {row: seen[key] for key, row in keyed if seen[key] != row}

    def close(self) -> None:
        self.conn.close()
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(self.path + suffix).unlink(missing_ok=True)
