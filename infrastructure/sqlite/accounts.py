"""Accounts, the hashes of their API keys and their webhook secrets, in SQLite
(embedded default). The webhook secret is stored as it is: the sender needs it to
sign (see docs/security.md); the file is the data dir's, readable by its owner."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from application.accounts import Account, AccountLimits, DuplicateAccountError
from infrastructure.sqlite.database import SQLiteDatabase

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    account_id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    key_hash TEXT NOT NULL UNIQUE,
    requests_per_minute INTEGER NOT NULL,
    records_per_day INTEGER NOT NULL,
    max_active_actions INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    webhook_secret TEXT
)
"""
_COLUMNS = (
    "account_id, name, key_hash, requests_per_minute, records_per_day, max_active_actions, created_at, webhook_secret"
)


def _account(row: tuple[Any, ...]) -> Account:
    account_id, name, key_hash, rpm, rpd, active, created_at, secret = row
    return Account(account_id, name, key_hash, AccountLimits(rpm, rpd, active), created_at, secret)


class SQLiteAccountStore:
    def __init__(self, path: Path | str) -> None:
        self.db = SQLiteDatabase(path, schema=SCHEMA)
        with self.db.write() as conn:
            # A file of a release before webhooks: its accounts have no secret yet.
            columns = {row[1] for row in conn.execute("PRAGMA table_info(accounts)")}
            if "webhook_secret" not in columns:
                conn.execute("ALTER TABLE accounts ADD COLUMN webhook_secret TEXT")

    def add(self, account: Account) -> None:
        limits = account.limits
        try:
            with self.db.write() as conn:
                conn.execute(
                    f"INSERT INTO accounts ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
                    (
                        account.account_id,
                        account.name,
                        account.key_hash,
                        limits.requests_per_minute,
                        limits.records_per_day,
                        limits.max_active_actions,
                        account.created_at,
                        account.webhook_secret,
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise DuplicateAccountError(f"an account named {account.name!r} already exists") from exc

    def by_key_hash(self, key_hash: str) -> Account | None:
        return self._one("key_hash", key_hash)

    def get(self, account_id: str) -> Account | None:
        return self._one("account_id", account_id)

    def set_webhook_secret(self, account_id: str, secret: str) -> bool:
        with self.db.write() as conn:
            found = conn.execute("UPDATE accounts SET webhook_secret=? WHERE account_id=?", (secret, account_id))
            return found.rowcount == 1

    def _one(self, column: str, value: str) -> Account | None:
        row = self.db.connection().execute(f"SELECT {_COLUMNS} FROM accounts WHERE {column}=?", (value,)).fetchone()
        return None if row is None else _account(row)

    def close(self) -> None:
        self.db.close()
