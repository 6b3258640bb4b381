"""Per-account request counts in fixed windows, in SQLite.

Check and count happen in one BEGIN IMMEDIATE transaction, so two API processes
sharing the file never both take the last request of a window.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from application.accounts import RateDecision, counted, fixed_window
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
        window, reset = fixed_window(now, window_seconds)
        with self.db.write() as conn:
            row = conn.execute(
                "SELECT window_start, count FROM request_counts WHERE account_id=?", (account_id,)
            ).fetchone()
            used = row[1] if row is not None and row[0] == window else 0
            decision = counted(used, limit, reset)
            if decision.allowed:
                conn.execute(
                    "INSERT INTO request_counts VALUES (?, ?, ?) ON CONFLICT (account_id)"
                    " DO UPDATE SET window_start=excluded.window_start, count=excluded.count",
                    (account_id, window, used + 1),
                )
        return decision

    def close(self) -> None:
        self.db.close()
