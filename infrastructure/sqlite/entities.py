"""Entity store on SQLite: one table, unique (account_id, entity_type, unique_key)
enforced by an index. Every statement names the account, so one account's entities
are invisible to another's lookups, duplicate checks and updates.

The primary key is the id alone: with (entity_type, id) SQLite's planner chose a
prefix scan of the primary key over the unique index for key lookups, which made
every chunk scan the whole table (measured: quadratic, 4k records/s at 1M rows).

Each batch runs in one BEGIN IMMEDIATE transaction: existing keys are read and the
new rows written under the same write lock, so no other worker can take a key in
between; within the batch, items are decided in order.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from application.ports.entities import EntityChange, EntityRef, InsertResult, NewEntity, UpdateResult
from infrastructure.sqlite.database import SQLiteDatabase, statements

SCHEMA = """
CREATE TABLE IF NOT EXISTS entities (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    unique_key TEXT NOT NULL,
    data BLOB NOT NULL,
    last_action TEXT,
    last_row INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS entities_account_unique_key ON entities (account_id, entity_type, unique_key)
"""

_MAX_PARAMS = 900


def _batches(values: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), _MAX_PARAMS):
        yield values[start : start + _MAX_PARAMS]


def _has_legacy_schema(conn: sqlite3.Connection) -> bool:
    """An entities table from before entities belonged to accounts (no account_id)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(entities)")}
    return bool(columns) and "account_id" not in columns


class _Row:
    __slots__ = ("data", "id", "key", "last_action", "last_row")

    def __init__(self, id: str, key: str, data: bytes, last_action: str | None, last_row: int | None):
        self.id, self.key, self.data = id, key, data
        self.last_action, self.last_row = last_action, last_row

    def ref(self) -> EntityRef:
        return EntityRef(self.id, self.last_action, self.last_row)


class SQLiteEntityStore:
    def __init__(self, path: Path | str) -> None:
        # The unique-key index takes inserts all over its pages: give it a larger cache.
        self.db = SQLiteDatabase(path, cache_mib=32)
        self._legacy = _has_legacy_schema(self.db.connection())
        if not self._legacy:
            self.db.apply_schema(SCHEMA)

    def _load(
        self, conn: sqlite3.Connection, account_id: str, entity_type: str, column: str, values: list[str]
    ) -> list[_Row]:
        rows: list[_Row] = []
        for batch in _batches(sorted(set(values))):
            marks = ",".join("?" * len(batch))
            cur = conn.execute(
                f"SELECT id, unique_key, data, last_action, last_row FROM entities "
                f"WHERE account_id=? AND entity_type=? AND {column} IN ({marks})",
                [account_id, entity_type, *batch],
            )
            rows += [_Row(*r) for r in cur.fetchall()]
        return rows

    def insert_many(self, account_id: str, entity_type: str, items: Sequence[NewEntity]) -> list[InsertResult]:
        now = datetime.now(UTC).isoformat()
        with self.db.write() as conn:
            keys = [i.unique_key for i in items]
            by_key = {r.key: r for r in self._load(conn, account_id, entity_type, "unique_key", keys)}
            results: list[InsertResult] = []
            new_rows = []
            for item in items:
                holder = by_key.get(item.unique_key)
                if holder is not None:
                    results.append(InsertResult(False, holder.ref()))
                    continue
                data = orjson.dumps(item.values)
                by_key[item.unique_key] = _Row(item.entity_id, item.unique_key, data, item.action_id, item.row)
                new_rows.append(
                    (item.entity_id, account_id, entity_type, item.unique_key, data, item.action_id, item.row, now, now)
                )
                results.append(InsertResult(True))
            conn.executemany(
                "INSERT INTO entities (id, account_id, entity_type, unique_key, data, last_action, last_row,"
                " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                new_rows,
            )
        return results

    def update_many(self, account_id: str, entity_type: str, items: Sequence[EntityChange]) -> list[UpdateResult]:
        now = datetime.now(UTC).isoformat()
        with self.db.write() as conn:
            ids = [i.match_value for i in items if i.match == "id"]
            keys = [i.match_value for i in items if i.match == "unique"]
            keys += [i.new_unique_key for i in items if i.new_unique_key]
            loaded = self._load(conn, account_id, entity_type, "id", ids)
            loaded += self._load(conn, account_id, entity_type, "unique_key", keys)
            by_id = {r.id: r for r in loaded}
            by_key = {r.key: r for r in loaded}
            changed: dict[str, _Row] = {}
            results = [self._apply(item, by_id, by_key, changed) for item in items]
            conn.executemany(
                "UPDATE entities SET unique_key=?, data=?, last_action=?, last_row=?, updated_at=? "
                "WHERE account_id=? AND entity_type=? AND id=?",
                [
                    (r.key, r.data, r.last_action, r.last_row, now, account_id, entity_type, r.id)
                    for r in changed.values()
                ],
            )
        return results

    @staticmethod
    def _apply(
        item: EntityChange, by_id: dict[str, _Row], by_key: dict[str, _Row], changed: dict[str, _Row]
    ) -> UpdateResult:
        target = by_id.get(item.match_value) if item.match == "id" else by_key.get(item.match_value)
        if target is None:
            return UpdateResult("not_found")
        if target.last_action == item.action_id and (target.last_row or 0) >= item.row:
            # This row's change (or a later row's of the same action) is already stored.
            return UpdateResult("already_applied", target.id)
        new_key = item.new_unique_key
        if new_key and new_key != target.key:
            holder = by_key.get(new_key)
            if holder is not None and holder.id != target.id:
                return UpdateResult("duplicate", target.id, holder.ref())
            del by_key[target.key]
            target.key = new_key
            by_key[new_key] = target
        merged: dict[str, Any] = orjson.loads(target.data)
        merged.update(item.values)
        target.data = orjson.dumps(merged)
        target.last_action, target.last_row = item.action_id, item.row
        changed[target.id] = target
        return UpdateResult("updated", target.id)

    def get(self, account_id: str, entity_type: str, entity_id: str) -> dict[str, Any] | None:
        row = (
            self.db.connection()
            .execute(
                "SELECT data FROM entities WHERE account_id=? AND entity_type=? AND id=?",
                (account_id, entity_type, entity_id),
            )
            .fetchone()
        )
        return None if row is None else dict(orjson.loads(row[0]))

    def count(self, account_id: str, entity_type: str) -> int:
        row = (
            self.db.connection()
            .execute("SELECT COUNT(*) FROM entities WHERE account_id=? AND entity_type=?", (account_id, entity_type))
            .fetchone()
        )
        return int(row[0])

    # ------------------------------------------------------------------ migration

    def needs_owner_migration(self) -> bool:
        return self._legacy

    def assign_owners(self, owner_of: Callable[[str, str | None], str]) -> int:
        """Rewrite a store written before entities had accounts: every entity gets the
        account ``owner_of(entity_id, last_action)`` names, in one transaction."""
        if not self._legacy:
            return 0
        with self.db.write() as conn:
            conn.execute("ALTER TABLE entities RENAME TO entities_before_accounts")
            conn.execute("DROP INDEX IF EXISTS entities_unique_key")
            for statement in statements(SCHEMA):
                conn.execute(statement)
            moved = 0
            cursor = conn.execute(
                "SELECT id, entity_type, unique_key, data, last_action, last_row, created_at, updated_at"
                " FROM entities_before_accounts"
            )
            while page := cursor.fetchmany(5000):
                conn.executemany(
                    "INSERT INTO entities (id, account_id, entity_type, unique_key, data, last_action, last_row,"
                    " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                    [(r[0], owner_of(r[0], r[4]), *r[1:]) for r in page],
                )
                moved += len(page)
            conn.execute("DROP TABLE entities_before_accounts")
        self._legacy = False
        return moved

    def close(self) -> None:
        self.db.close()
