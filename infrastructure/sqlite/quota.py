"""Embedded quota: records per rolling 24 hours and concurrently active actions.

The rule is the application's (``application.quotas.check_quota``); here the
account's spends are read, checked and the new one written in one BEGIN IMMEDIATE
transaction, so two processes sharing the file can never both spend the last unit.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from application.ports.quotas import QuotaLimits
from application.quotas import QuotaSpend, check_quota, still_counting
from infrastructure.sqlite.database import SQLiteDatabase

SCHEMA = """
CREATE TABLE IF NOT EXISTS quota_spend (
    account_id TEXT NOT NULL,
    action_id TEXT NOT NULL,
    records INTEGER NOT NULL,
    spent_at TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (account_id, action_id)
);
CREATE INDEX IF NOT EXISTS quota_spend_by_time ON quota_spend (account_id, spent_at)
"""


class SQLiteQuotaGate:
    def __init__(self, path: Path | str) -> None:
        self.db = SQLiteDatabase(path, schema=SCHEMA)

    def reserve(self, account_id: str, action_id: str, records: int, limits: QuotaLimits, now: datetime) -> None:
        with self.db.write() as conn:
            if conn.execute(
                "SELECT 1 FROM quota_spend WHERE account_id=? AND action_id=?", (account_id, action_id)
            ).fetchone():
                return  # the same action asked again (a retried submission)
            rows = conn.execute(
                "SELECT action_id, records, spent_at, active FROM quota_spend"
                " WHERE account_id=? AND (active=1 OR spent_at>?)",
                (account_id, still_counting(now)),
            ).fetchall()
            check_quota(account_id, [QuotaSpend(a, r, t, bool(on)) for a, r, t, on in rows], records, limits, now)
            conn.execute(
                "INSERT INTO quota_spend (account_id, action_id, records, spent_at) VALUES (?,?,?,?)",
                (account_id, action_id, records, now.isoformat()),
            )

    def release(self, account_id: str, action_id: str) -> None:
        with self.db.write() as conn:
            conn.execute("UPDATE quota_spend SET active=0 WHERE account_id=? AND action_id=?", (account_id, action_id))

    def close(self) -> None:
        self.db.close()
