"""A scratch SQLite file that remembers the first row of each unique key of one input.

On disk rather than in a dict so that memory stays flat however large the input is.
One multi-row ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` per batch tells which
keys are new; only the (few) repeated keys are looked up for their first row.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path

# 2 parameters per pair, well under SQLite's 32,766-parameter limit.
_PAIRS_PER_STATEMENT = 4000


class SQLiteKeyIndex:
    def __init__(self, directory: Path | str) -> None:
        handle, self.path = tempfile.mkstemp(prefix="keys-", suffix=".db", dir=directory)
        os.close(handle)
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=OFF")
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.execute("CREATE TABLE first_rows (key TEXT PRIMARY KEY, row INTEGER NOT NULL) WITHOUT ROWID")

    def first_rows(self, keyed: Sequence[tuple[str, int]]) -> dict[int, int]:
        repeated: list[tuple[str, int]] = []
        for start in range(0, len(keyed), _PAIRS_PER_STATEMENT):
            repeated += self._insert(keyed[start : start + _PAIRS_PER_STATEMENT])
        if not repeated:
            return {}
        keys = list({key for key, _ in repeated})
        first: dict[str, int] = {}
        for start in range(0, len(keys), 900):
            batch = keys[start : start + 900]
            marks = ",".join("?" * len(batch))
            first.update(self.conn.execute(f"SELECT key, row FROM first_rows WHERE key IN ({marks})", batch).fetchall())
        return {row: first[key] for key, row in repeated if first[key] != row}

    def _insert(self, pairs: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
        """Insert new keys; return the pairs whose key was already there (or repeated in ``pairs``)."""
        unique: dict[str, int] = {}
        repeated = []
        for key, row in pairs:
            if key in unique:
                repeated.append((key, row))
            else:
                unique[key] = row
        values = ",".join("(?,?)" for _ in unique)
        params = [part for pair in unique.items() for part in pair]
        cur = self.conn.execute(f"INSERT INTO first_rows VALUES {values} ON CONFLICT DO NOTHING RETURNING key", params)
        inserted = {key for (key,) in cur.fetchall()}
        repeated += [(key, row) for key, row in unique.items() if key not in inserted]
        return repeated

    def close(self) -> None:
        self.conn.close()
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(self.path + suffix).unlink(missing_ok=True)
