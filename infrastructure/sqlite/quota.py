"""Embedded quota: records per rolling 24 hours and concurrently active actions.

Check and spend happen in one BEGIN IMMEDIATE transaction, so two processes sharing
the file can never both spend the last unit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from application.ports.quotas import QuotaExceededError, QuotaLimits
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

DAY = timedelta(days=1)


class SQLiteQuotaGate:
    def __init__(self, path: Path | str) -> None:
        self.db = SQLiteDatabase(path, schema=SCHEMA)

    def reserve(self, account_id: str, action_id: str, records: int, limits: QuotaLimits, now: datetime) -> None:
        since = (now - DAY).isoformat()
        with self.db.write() as conn:
            if conn.execute(
                "SELECT 1 FROM quota_spend WHERE account_id=? AND action_id=?", (account_id, action_id)
            ).fetchone():
                return  # the same action asked again (a retried submission)
            active = conn.execute(
                "SELECT COUNT(*) FROM quota_spend WHERE account_id=? AND active=1", (account_id,)
            ).fetchone()[0]
            if active >= limits.max_active_actions:
                raise QuotaExceededError(
                    "max_active_actions",
                    f"account {account_id} already has {active} active actions (limit {limits.max_active_actions})",
                    retry_after_seconds=60,
                )
            spent, oldest = conn.execute(
                "SELECT COALESCE(SUM(records), 0), MIN(spent_at) FROM quota_spend WHERE account_id=? AND spent_at>?",
                (account_id, since),
            ).fetchone()
            if spent + records > limits.records_per_day:
                retry = 60 if oldest is None else int((datetime.fromisoformat(oldest) + DAY - now).total_seconds()) + 1
                raise QuotaExceededError(
                    "records_per_day",
                    f"{records} records would exceed account {account_id}'s {limits.records_per_day}"
                    f" records per 24 hours ({spent} already used)",
                    retry_after_seconds=max(retry, 1),
                )
            conn.execute(
                "INSERT INTO quota_spend (account_id, action_id, records, spent_at) VALUES (?,?,?,?)",
                (account_id, action_id, records, now.isoformat()),
            )

    def release(self, account_id: str, action_id: str) -> None:
        with self.db.write() as conn:
            conn.execute("UPDATE quota_spend SET active=0 WHERE account_id=? AND action_id=?", (account_id, action_id))

    def close(self) -> None:
        self.db.close()
