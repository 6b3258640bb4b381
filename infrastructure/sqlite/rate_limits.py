"""Per-account request counts in fixed windows, in SQLite.

Check and count happen in one BEGIN IMMEDIATE transaction, so two API processes
sharing the file never both take the last request of a window.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from application.accounts import RateDecision
from infrastructure.sqlite.database import SQLiteDatabase

SCHEMA = """
CREATE TABLE IF NOT EXISTS request_counts (
    account_id TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    count INTEGER NOT NULL
)
"""


class SQLiteRateLimiter:
    def __init__(self, path: Path | str) -> None:
        self.db = SQLiteDatabase(path, schema=SCHEMA)

    def hit(self, account_id: str, limit: int, window_seconds: int, now: datetime) -> RateDecision:
        epoch = int(now.timestamp())
        window = epoch - epoch % window_seconds
        reset = window + window_seconds - epoch
        with self.db.write() as conn:
            row = conn.execute(
                "SELECT window_start, count FROM request_counts WHERE account_id=?", (account_id,)
            ).fetchone()
            used = row[1] if row is not None and row[0] == window else 0
            if used >= limit:
                return RateDecision(False, limit, 0, reset)
            conn.execute(
                "INSERT INTO request_counts VALUES (?, ?, ?) ON CONFLICT (account_id)"
                " DO UPDATE SET window_start=excluded.window_start, count=excluded.count",
                (account_id, window, used + 1),
            )
        return RateDecision(True, limit, limit - used - 1, reset)

    def close(self) -> None:
        self.db.close()
