"""Entity store on SQLite: one table, unique (account_id, entity_type, unique_key)
enforced by an index. Every statement names the account, so one account's entities
are invisible to another's lookups, duplicate checks and updates.

The primary key is the id alone: with (entity_type, id) SQLite's planner chose a
prefix scan of the primary key over the unique index for key lookups, which made
every chunk scan the whole table (measured: quadratic, 4k records/s at 1M rows).

An entity's data is JSON compressed as ``infrastructure.stored_json`` says (~135 -> ~84
bytes a contact); data stored before as plain JSON is read as it was.

Each batch runs in one BEGIN IMMEDIATE transaction: existing keys are read and the
new rows written under the same write lock, so no other worker can take a key in
between; within the batch, items are decided in order, by
``application.entity_changes.decide_update`` (the store only loads and writes).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from application.entity_changes import (
    RecordedChange,
    StoredEntity,
    UpdateDecision,
    decide_delete,
    decide_revert,
    decide_update,
    result_of,
)
from application.ports.entities import (
    EntityChange,
    EntityDelete,
    EntityRef,
    EntityRevert,
    EntityRow,
    InsertResult,
    NewEntity,
    StoredChange,
    UpdateResult,
)
from infrastructure.sqlite.database import SQLiteDatabase, statements
from infrastructure.stored_json import packed, unpacked

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
    updated_at TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    last_change BLOB
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS entities_account_unique_key ON entities (account_id, entity_type, unique_key);
CREATE TABLE IF NOT EXISTS entity_changes (
    account_id TEXT NOT NULL,
    action_id TEXT NOT NULL,
    row INTEGER NOT NULL,
    entity_id TEXT NOT NULL,
    change BLOB NOT NULL,
    PRIMARY KEY (account_id, action_id, row)
) WITHOUT ROWID
"""
# Columns added after a release had stores in use (added in place when missing).
_ADDED_COLUMNS = {"version": "INTEGER NOT NULL DEFAULT 1", "last_change": "BLOB"}
_COLUMNS = "id, unique_key, data, version, last_action, last_row, last_change"

_MAX_PARAMS = 900


def _batches(values: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(values), _MAX_PARAMS):
        yield values[start : start + _MAX_PARAMS]


def _columns(conn: sqlite3.Connection) -> set[str]:
    return {row[1] for row in conn.execute("PRAGMA table_info(entities)")}


def _has_legacy_schema(conn: sqlite3.Connection) -> bool:
    """An entities table from before entities belonged to accounts (no account_id)."""
    columns = _columns(conn)
    return bool(columns) and "account_id" not in columns


def _stored(row: tuple[Any, ...]) -> StoredEntity:
    entity_id, key, data, version, last_action, last_row, last_change = row
    change = RecordedChange.of_json(orjson.loads(last_change)) if last_change else None
    return StoredEntity(entity_id, key, orjson.loads(unpacked(data)), version, last_action, last_row, change)


class SQLiteEntityStore:
    def __init__(self, path: Path | str) -> None:
        # The unique-key index takes inserts all over its pages: give it a larger cache.
        self.db = SQLiteDatabase(path, cache_mib=32)
        self._legacy = _has_legacy_schema(self.db.connection())
        if not self._legacy:
            self.db.apply_schema(SCHEMA)
            self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        with self.db.write() as conn:
            present = _columns(conn)
            for name, definition in _ADDED_COLUMNS.items():
                if name not in present:
                    conn.execute(f"ALTER TABLE entities ADD COLUMN {name} {definition}")

    def _load(
        self, conn: sqlite3.Connection, account_id: str, entity_type: str, column: str, values: list[str]
    ) -> list[StoredEntity]:
        found: list[StoredEntity] = []
        for batch in _batches(sorted(set(values))):
            marks = ",".join("?" * len(batch))
            cur = conn.execute(
                f"SELECT {_COLUMNS} FROM entities WHERE account_id=? AND entity_type=? AND {column} IN ({marks})",
                [account_id, entity_type, *batch],
            )
            found += [_stored(row) for row in cur.fetchall()]
        return found

    # ------------------------------------------------------------------ inserts

    def insert_many(self, account_id: str, entity_type: str, items: Sequence[NewEntity]) -> list[InsertResult]:
        now = datetime.now(UTC).isoformat()
        with self.db.write() as conn:
            keys = [i.unique_key for i in items]
            holders = {e.key: e.ref() for e in self._load(conn, account_id, entity_type, "unique_key", keys)}
            results: list[InsertResult] = []
            new_rows = []
            for item in items:
                holder = holders.get(item.unique_key)
                if holder is not None:
                    results.append(InsertResult(False, holder))
                    continue
                holders[item.unique_key] = EntityRef(item.entity_id, item.action_id, item.row)
                new_rows.append(
                    (
                        item.entity_id,
                        account_id,
                        entity_type,
                        item.unique_key,
                        packed(orjson.dumps(item.values)),
                        item.action_id,
                        item.row,
                        now,
                        now,
                    )
                )
                results.append(InsertResult(True))
            conn.executemany(
                "INSERT INTO entities (id, account_id, entity_type, unique_key, data, last_action, last_row,"
                " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                new_rows,
            )
        return results

    # ------------------------------------------------------------------ updates

    def update_many(self, account_id: str, entity_type: str, items: Sequence[EntityChange]) -> list[UpdateResult]:
        now = datetime.now(UTC).isoformat()
        with self.db.write() as conn:
            batch = _Batch(self._targets(conn, account_id, entity_type, items))
            journaled = self._journaled(conn, account_id, items)
            results = [batch.apply(item, journaled.get((item.action_id, item.row))) for item in items]
            self._store(conn, batch, now, account_id, entity_type)
        return results

    def _targets(
        self, conn: sqlite3.Connection, account_id: str, entity_type: str, items: Sequence[EntityChange]
    ) -> list[StoredEntity]:
        ids = [i.match_value for i in items if i.match == "id"]
        keys = [i.match_value for i in items if i.match == "unique"]
        keys += [i.new_unique_key for i in items if i.new_unique_key]
        loaded = self._load(conn, account_id, entity_type, "id", ids)
        return loaded + self._load(conn, account_id, entity_type, "unique_key", keys)

    def revert_many(self, account_id: str, entity_type: str, items: Sequence[EntityRevert]) -> list[UpdateResult]:
        now = datetime.now(UTC).isoformat()
        with self.db.write() as conn:
            loaded = self._load(conn, account_id, entity_type, "id", [i.entity_id for i in items])
            keys = [i.key for i in items if i.kind == "recreate" and i.key]
            batch = _Batch(loaded + self._load(conn, account_id, entity_type, "unique_key", keys))
            journaled = self._journaled(conn, account_id, items)
            results = [batch.revert(item, journaled.get((item.action_id, item.row))) for item in items]
            self._store(conn, batch, now, account_id, entity_type)
            self._remove_and_create(conn, batch, now, account_id, entity_type)
        return results

    def delete_many(self, account_id: str, entity_type: str, items: Sequence[EntityDelete]) -> list[UpdateResult]:
        with self.db.write() as conn:
            ids = [i.match_value for i in items if i.match == "id"]
            keys = [i.match_value for i in items if i.match == "unique"]
            loaded = self._load(conn, account_id, entity_type, "id", ids)
            batch = _Batch(loaded + self._load(conn, account_id, entity_type, "unique_key", keys))
            journaled = self._journaled(conn, account_id, items)
            results = [batch.delete(item, journaled.get((item.action_id, item.row))) for item in items]
            now = datetime.now(UTC).isoformat()
            self._store(conn, batch, now, account_id, entity_type)
            self._remove_and_create(conn, batch, now, account_id, entity_type)
        return results

    @staticmethod
    def _remove_and_create(
        conn: sqlite3.Connection, batch: _Batch, now: str, account_id: str, entity_type: str
    ) -> None:
        conn.executemany(
            "DELETE FROM entities WHERE account_id=? AND entity_type=? AND id=?",
            [(account_id, entity_type, entity_id) for entity_id in batch.removed],
        )
        conn.executemany(
            "INSERT INTO entities (id, account_id, entity_type, unique_key, data, last_action, last_row,"
            " created_at, updated_at, version, last_change) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [_created_row(e, now, account_id, entity_type) for e in batch.created],
        )

    def _store(self, conn: sqlite3.Connection, batch: _Batch, now: str, account_id: str, entity_type: str) -> None:
        # The unique key is set only where it changed: SQLite rewrites an index's entries
        # whenever its column is SET, even to the same value (measured: 100,000 updates
        # 1.23 s with the key in the SET list, 0.34 s without).
        conn.executemany(
            "UPDATE entities SET data=?, version=?, last_action=?, last_row=?, last_change=?,"
            " updated_at=? WHERE account_id=? AND entity_type=? AND id=?",
            [_update_row(e, now, account_id, entity_type) for e in batch.written.values()],
        )
        conn.executemany(
            "UPDATE entities SET unique_key=? WHERE account_id=? AND entity_type=? AND id=?",
            [(e.key, account_id, entity_type, e.id) for e in batch.written.values() if e.id in batch.rekeyed],
        )
        conn.executemany(
            "INSERT OR IGNORE INTO entity_changes VALUES (?,?,?,?,?)",
            [(account_id, c.action_id, c.row, entity_id, _json(c)) for entity_id, c in batch.journal],
        )

    @staticmethod
    def _journaled(
        conn: sqlite3.Connection, account_id: str, items: Sequence[EntityChange | EntityRevert | EntityDelete]
    ) -> dict[tuple[str, int], RecordedChange]:
        """This batch's rows' own changes that a later writer moved to the journal."""
        found: dict[tuple[str, int], RecordedChange] = {}
        pairs = sorted({(i.action_id, i.row) for i in items})
        for batch in _batches(pairs):
            marks = ",".join("(?,?)" for _ in batch)
            cur = conn.execute(
                f"SELECT change FROM entity_changes WHERE account_id=? AND (action_id, row) IN (VALUES {marks})",
                [account_id, *(part for pair in batch for part in pair)],
            )
            for (change,) in cur.fetchall():
                recorded = RecordedChange.of_json(orjson.loads(change))
                found[(recorded.action_id, recorded.row)] = recorded
        return found

    # ------------------------------------------------------------------ confirmations

    def confirm(self, account_id: str, entity_type: str, stored: Sequence[StoredChange]) -> None:
        if not stored:
            return
        with self.db.write() as conn:
            conn.executemany(
                "UPDATE entities SET last_change=NULL WHERE account_id=? AND entity_type=? AND id=?"
                " AND last_action=? AND last_row=? AND last_change IS NOT NULL",
                [(account_id, entity_type, s.entity_id, s.action_id, s.row) for s in stored],
            )
            conn.executemany(
                "DELETE FROM entity_changes WHERE account_id=? AND action_id=? AND row=?",
                [(account_id, s.action_id, s.row) for s in stored],
            )

    def forget_changes(self, account_id: str, action_id: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM entity_changes WHERE account_id=? AND action_id=?", (account_id, action_id))

    # ------------------------------------------------------------------ reads

    def get(self, account_id: str, entity_type: str, entity_id: str) -> dict[str, Any] | None:
        row = self._row("data", account_id, entity_type, entity_id)
        return None if row is None else dict(orjson.loads(unpacked(row[0])))

    def load(self, account_id: str, entity_type: str, ids: Sequence[str], keys: Sequence[str]) -> list[StoredEntity]:
        conn = self.db.connection()
        by_id = self._load(conn, account_id, entity_type, "id", list(ids))
        return by_id + self._load(conn, account_id, entity_type, "unique_key", list(keys))

    def id_of(self, account_id: str, entity_type: str, unique_key: str) -> str | None:
        row = (
            self.db.connection()
            .execute(
                "SELECT id FROM entities WHERE account_id=? AND entity_type=? AND unique_key=?",
                (account_id, entity_type, unique_key),
            )
            .fetchone()
        )
        return None if row is None else str(row[0])

    def ids_of(self, account_id: str, entity_type: str, unique_keys: Sequence[str]) -> dict[str, str]:
        conn = self.db.connection()
        found: dict[str, str] = {}
        for batch in _batches(sorted(set(unique_keys))):
            marks = ",".join("?" * len(batch))
            found.update(
                conn.execute(
                    "SELECT unique_key, id FROM entities"
                    f" WHERE account_id=? AND entity_type=? AND unique_key IN ({marks})",
                    [account_id, entity_type, *batch],
                ).fetchall()
            )
        return found

    def version(self, account_id: str, entity_type: str, entity_id: str) -> int | None:
        row = self._row("version", account_id, entity_type, entity_id)
        return None if row is None else int(row[0])

    def _row(self, column: str, account_id: str, entity_type: str, entity_id: str) -> tuple[Any, ...] | None:
        found: tuple[Any, ...] | None = (
            self.db.connection()
            .execute(
                f"SELECT {column} FROM entities WHERE account_id=? AND entity_type=? AND id=?",
                (account_id, entity_type, entity_id),
            )
            .fetchone()
        )
        return found

    def entities_page(self, after_id: str | None, limit: int) -> list[EntityRow]:
        rows = (
            self.db.connection()
            .execute(
                "SELECT id, account_id, entity_type, unique_key, data FROM entities WHERE id > ? ORDER BY id LIMIT ?",
                (after_id or "", limit),
            )
            .fetchall()
        )
        return [EntityRow(r[0], r[1], r[2], r[3], orjson.loads(unpacked(r[4]))) for r in rows]

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


def _update_row(e: StoredEntity, now: str, account_id: str, entity_type: str) -> tuple[Any, ...]:
    data = packed(orjson.dumps(e.values))
    return (data, e.version, e.last_action, e.last_row, _json(e.last_change), now, account_id, entity_type, e.id)


def _created_row(e: StoredEntity, now: str, account_id: str, entity_type: str) -> tuple[Any, ...]:
    data, change = packed(orjson.dumps(e.values)), _json(e.last_change)
    return (e.id, account_id, entity_type, e.key, data, e.last_action, e.last_row, now, now, e.version, change)


def _json(change: RecordedChange | None) -> bytes | None:
    return None if change is None else orjson.dumps(change.as_json())


class _Batch:
    """The entities one ``update_many`` has loaded, kept current as it decides (later
    items of the batch see what earlier ones changed)."""

    def __init__(self, loaded: list[StoredEntity]) -> None:
        self.by_id = {e.id: e for e in loaded}
        self.by_key = {e.key: e for e in loaded}
        self.written: dict[str, StoredEntity] = {}
        self.rekeyed: set[str] = set()  # written entities whose unique key changed
        self.removed: list[str] = []
        self.created: list[StoredEntity] = []
        self.journal: list[tuple[str, RecordedChange]] = []

    def apply(self, item: EntityChange, journaled: RecordedChange | None) -> UpdateResult:
        target = self.by_id.get(item.match_value) if item.match == "id" else self.by_key.get(item.match_value)
        holder = self.by_key.get(item.new_unique_key) if item.new_unique_key else None
        return self._done(decide_update(item, target, holder, journaled))

    def revert(self, item: EntityRevert, journaled: RecordedChange | None) -> UpdateResult:
        holder = self.by_key.get(item.key) if item.key else None
        return self._done(decide_revert(item, self.by_id.get(item.entity_id), journaled, holder))

    def delete(self, item: EntityDelete, journaled: RecordedChange | None) -> UpdateResult:
        target = self.by_id.get(item.match_value) if item.match == "id" else self.by_key.get(item.match_value)
        return self._done(decide_delete(item, target, journaled))

    def _done(self, decision: UpdateDecision) -> UpdateResult:
        target = decision.target
        if decision.kind in ("write", "remove"):
            assert target is not None
            self.journal += [(target.id, kept) for kept in decision.journal]
        if decision.kind == "write":
            self._write(decision)
        elif decision.kind == "remove":
            assert target is not None
            del self.by_id[target.id], self.by_key[target.key]
            self.removed.append(target.id)
        elif decision.kind == "create":
            assert target is not None
            self.by_id[target.id] = self.by_key[target.key] = target
            self.created.append(target)
        return result_of(decision)

    def _write(self, decision: UpdateDecision) -> None:
        target, change = decision.target, decision.change
        assert target is not None and change is not None and decision.values is not None
        if decision.new_key:
            del self.by_key[target.key]
            target.key = decision.new_key
            self.rekeyed.add(target.id)
            self.by_key[target.key] = target
        target.values, target.version, target.last_change = decision.values, change.version, change
        target.last_action, target.last_row = change.action_id, change.row
        self.written[target.id] = target
