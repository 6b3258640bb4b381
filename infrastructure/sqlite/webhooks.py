"""Webhook deliveries and their attempts, in SQLite (embedded default)."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

from application.ports.webhooks import PENDING, Delivery, DeliveryAttempt
from infrastructure.sqlite.database import SQLiteDatabase

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id TEXT PRIMARY KEY,
    action_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    event TEXT NOT NULL,
    url TEXT NOT NULL,
    payload TEXT NOT NULL,
    scheduled_at REAL NOT NULL,
    give_up_at REAL NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at REAL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_of_action ON deliveries (action_id);
CREATE TABLE IF NOT EXISTS attempts (
    delivery_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at REAL NOT NULL,
    status_code INTEGER,
    error TEXT,
    duration_ms INTEGER NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
)
"""
_COLUMNS = (
    "delivery_id, action_id, account_id, event, url, payload, scheduled_at, give_up_at,"
    " state, attempts, next_attempt_at"
)


def _delivery(row: tuple[Any, ...]) -> Delivery:
    return Delivery(*row)


class SQLiteWebhookDeliveries:
    def __init__(self, path: Path | str) -> None:
        self.db = SQLiteDatabase(path, schema=SCHEMA)

    def schedule(self, delivery: Delivery) -> bool:
        d = delivery
        row = (d.delivery_id, d.action_id, d.account_id, d.event, d.url, d.payload, d.scheduled_at, d.give_up_at)
        with self.db.write() as conn:
            try:
                conn.execute(
                    f"INSERT INTO deliveries ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,0,?)",
                    (*row, PENDING, d.scheduled_at),
                )
            except sqlite3.IntegrityError:
                return False
        return True

    def claim_due(self, now: float, lease_seconds: float, limit: int) -> list[Delivery]:
        due = f"SELECT {_COLUMNS} FROM deliveries WHERE state = 'pending' AND next_attempt_at <= ?"
        due += " ORDER BY next_attempt_at LIMIT ?"
        # Senders poll several times a second: look first, take the write lock only
        # when something is due (then look again under it).
        if not self.db.connection().execute(due, (now, 1)).fetchall():
            return []
        with self.db.write() as conn:
            rows = conn.execute(due, (now, limit)).fetchall()
            ids = [(now + lease_seconds, row[0]) for row in rows]
            conn.executemany(
                "UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = ? WHERE delivery_id = ?", ids
            )
        return [replace(_delivery(row), attempts=row[9] + 1, next_attempt_at=now + lease_seconds) for row in rows]

    def record(self, attempt: DeliveryAttempt, state: str, next_attempt_at: float | None) -> None:
        a = attempt
        with self.db.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO attempts VALUES (?,?,?,?,?,?)",
                (a.delivery_id, a.attempt, a.at, a.status_code, a.error, a.duration_ms),
            )
            # Only the latest attempt decides: a late answer to an attempt whose lease
            # ran out (another attempt was started since) changes nothing.
            conn.execute(
                "UPDATE deliveries SET state = ?, next_attempt_at = ? WHERE delivery_id = ? AND attempts = ?",
                (state, next_attempt_at, a.delivery_id, a.attempt),
            )

    def for_action(self, account_id: str, action_id: str) -> list[tuple[Delivery, list[DeliveryAttempt]]]:
        with self.db.read() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM deliveries WHERE action_id = ? AND account_id = ? ORDER BY scheduled_at",
                (action_id, account_id),
            ).fetchall()
            found = []
            for row in rows:
                attempts = conn.execute(
                    "SELECT * FROM attempts WHERE delivery_id = ? ORDER BY attempt", (row[0],)
                ).fetchall()
                found.append((_delivery(row), [DeliveryAttempt(*a) for a in attempts]))
        return found

    def close(self) -> None:
        self.db.close()
