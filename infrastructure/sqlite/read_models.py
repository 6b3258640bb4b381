"""Read models on SQLite: action views, per-record logs, the audit trail, and positions.

``apply`` runs in one write transaction with the projector's position, so a batch at
or below the stored position is refused whole and a replayed event changes nothing.
What is refused and how a batch's deltas merge into an action are the projections'
rules (``projections.merge``), which every store applies: here the action rows a batch
changes are read and written back inside that transaction.
"""

from __future__ import annotations

import heapq
import sqlite3
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson

from application.ports.read_models import (
    ActionDelta,
    ActionFilter,
    ActionView,
    EntityHistoryEntry,
    EntityKey,
    LogLine,
    ViewChanges,
)
from domain.bulk_action import entity_id_prefix, own_entity_id
from infrastructure.sqlite.database import SQLiteDatabase
from infrastructure.sqlite.ids import id_bytes, id_text
from projections.actions import READ_MODEL_VERSION
from projections.merge import MUTABLE, merged, refuses_batch

SCHEMA = """
CREATE TABLE IF NOT EXISTS actions (
    action_key INTEGER PRIMARY KEY,
    action_id TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    action_type TEXT NOT NULL,
    match_by TEXT,
    source_name TEXT,
    chunk_size INTEGER NOT NULL,
    expected_total INTEGER,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL,
    total INTEGER,
    chunk_count INTEGER,
    chunks_done INTEGER NOT NULL DEFAULT 0,
    succeeded INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    first_outcome_at TEXT,
    last_outcome_at TEXT,
    finished_at TEXT,
    discrepancy TEXT,
    actor BLOB,
    reverts TEXT,
    reverted_by TEXT,
    retry_of TEXT,
    retried_by TEXT,
    dry_run INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS actions_by_account ON actions (account_id, created_at, action_id);
CREATE INDEX IF NOT EXISTS actions_by_created ON actions (created_at, action_id);
CREATE TABLE IF NOT EXISTS record_logs (
    action_key INTEGER NOT NULL,
    row INTEGER NOT NULL,
    line_offset INTEGER,
    chunk_no INTEGER NOT NULL,
    outcome INTEGER,
    entity_id BLOB,
    op TEXT,
    errors BLOB,
    reason TEXT,
    duplicate_of_row INTEGER,
    position INTEGER NOT NULL,
    links BLOB,
    PRIMARY KEY (action_key, row)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS record_logs_not_succeeded ON record_logs (action_key, outcome, row)
    WHERE outcome IS NOT NULL;
CREATE TABLE IF NOT EXISTS positions (
    projection TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS entity_history (
    entity_id BLOB NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (entity_id, position)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS entity_keys (
    account_id TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    key TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (account_id, entity_type, key, entity_id)
) WITHOUT ROWID
"""
# Log line columns added after a release had read models in use (added in place).
_ADDED_LOG_COLUMNS = {"links": "BLOB"}
# Action view columns added after a release had read models in use (added in place).
_ADDED_COLUMNS = {
    "actor": "BLOB",
    "reverts": "TEXT",
    "reverted_by": "TEXT",
    "retry_of": "TEXT",
    "retried_by": "TEXT",
    "dry_run": "INTEGER NOT NULL DEFAULT 0",
}

_ACTION_COLUMNS = (
    "action_id, account_id, entity_type, action_type, match_by, source_name, chunk_size, "
    "expected_total, created_at, status, total, chunk_count, chunks_done, succeeded, failed, "
    "skipped, first_outcome_at, last_outcome_at, finished_at, discrepancy, actor, reverts, reverted_by, "
    "retry_of, retried_by, dry_run"
)
_LOG_COLUMNS = "row, line_offset, chunk_no, outcome, entity_id, op, errors, reason, duplicate_of_row, position, links"
# A log line is stored compactly (one per input record): the action by its small key,
# the line as its distance from the row, the outcome as a code (succeeded: NULL, so
# that the index of the others is small), and an inserted entity's id left out where
# it is the one the row's insert makes (``entity_id_for``).
_OUTCOME_CODES = {"succeeded": None, "failed": 1, "skipped": 2}
_OUTCOMES = {code: outcome for outcome, code in _OUTCOME_CODES.items()}
# What a succeeded record did to its entity, stored as one character instead of the word
# (~6 bytes a record); no op is a digit, and words stored before are read as they were.
_OP_CODES = {"created": "0", "updated": "1", "unchanged": "2", "deleted": "3", "recreated": "4", "removed": "5"}
_OPS = {code: op for op, code in _OP_CODES.items()}

_UPDATE_ACTION = f"UPDATE actions SET {', '.join(f'{name}=?' for name in MUTABLE)} WHERE action_id=?"
_READ_BATCH = 500  # action rows read per SELECT (well under SQLite's bound parameters)


def _action(row: tuple[Any, ...]) -> ActionView:
    values = list(row)
    values[20] = orjson.loads(values[20]) if values[20] else None  # actor
    values[25] = bool(values[25])  # dry_run
    return ActionView(*values)


def _log_row(key: int, line: LogLine) -> tuple[Any, ...]:
    own = own_entity_id(line.action_id, line.row)
    entity = None if line.entity_id is None or line.entity_id == own else id_bytes(line.entity_id)
    return (
        key,
        line.row,
        None if line.line is None else line.line - line.row,
        line.chunk_no,
        _OUTCOME_CODES[line.outcome],
        entity,
        None if line.op is None else _OP_CODES.get(line.op, line.op),
        orjson.dumps(line.errors) if line.errors else None,
        line.reason,
        line.duplicate_of_row,
        line.position,
        orjson.dumps(line.links) if line.links else None,
    )


# Where a stored log row (``_log_row``) holds its outcome, entity, op and position.
_LOG_OUTCOME, _LOG_ENTITY, _LOG_OP, _LOG_POSITION = 4, 5, 6, 10
_OWN_LOW = 0b10 << 62  # the low 64 bits of an entity id its row makes: these bits and the row


def _is_own_creation(outcome: int | None, entity: bytes | str | None, op: str | None) -> bool:
    """A succeeded log line whose entity id is the one its row makes (stored as NULL)."""
    return outcome is None and entity is None and op is not None


def _log_line(action_id: str, stored: tuple[Any, ...]) -> LogLine:
    row, offset, chunk_no, code, entity, op, errors, reason, duplicate_of_row, position, links = stored
    outcome = _OUTCOMES[code]
    op = _OPS.get(op, op)
    if entity is not None:
        entity_id: str | None = id_text(entity)
    elif _is_own_creation(code, entity, op):
        entity_id = own_entity_id(action_id, row)
    else:
        entity_id = None
    line = None if offset is None else row + offset
    decoded = orjson.loads(errors) if errors else []
    linked = orjson.loads(links) if links else None
    return LogLine(
        action_id, row, line, chunk_no, outcome, entity_id, op, decoded, reason, duplicate_of_row, position, linked
    )


class SQLiteReadModelStore:
    def __init__(self, path: Path | str) -> None:
        self.db = SQLiteDatabase(path)
        with self.db.write() as conn:
            existed = conn.execute("SELECT 1 FROM sqlite_master WHERE name='actions'").fetchone() is not None
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            version = READ_MODEL_VERSION if not existed else 1
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(version),))
            earlier_layout = existed and "action_key" not in {r[1] for r in conn.execute("PRAGMA table_info(actions)")}
        if earlier_layout:
            # Read models of an earlier release (their version says so): left as they
            # are, to be refused until `bulkactions migrate` rebuilds them aside.
            return
        self.db.apply_schema(SCHEMA)
        with self.db.write() as conn:
            present = {row[1] for row in conn.execute("PRAGMA table_info(actions)")}
            for name, definition in _ADDED_COLUMNS.items():
                if name not in present:
                    conn.execute(f"ALTER TABLE actions ADD COLUMN {name} {definition}")
            present = {row[1] for row in conn.execute("PRAGMA table_info(record_logs)")}
            for name, definition in _ADDED_LOG_COLUMNS.items():
                if name not in present:
                    conn.execute(f"ALTER TABLE record_logs ADD COLUMN {name} {definition}")

    def schema_version(self) -> int:
        row = self.db.connection().execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0])

    def position(self, projection: str) -> int:
        row = (
            self.db.connection().execute("SELECT position FROM positions WHERE projection=?", (projection,)).fetchone()
        )
        return int(row[0]) if row else 0

    def ping(self) -> None:
        self.db.connection().execute("SELECT 1 FROM positions LIMIT 1").fetchall()

    def count_by_status(self) -> dict[str, int]:
        rows = self.db.connection().execute("SELECT status, COUNT(*) FROM actions GROUP BY status").fetchall()
        return {str(status): int(count) for status, count in rows}

    def apply(
        self, projection: str, position: int, changes: ViewChanges, *, expected_position: int | None = None
    ) -> bool:
        with self.db.write() as conn:
            row = conn.execute("SELECT position FROM positions WHERE projection=?", (projection,)).fetchone()
            stored = row[0] if row is not None else 0
            if refuses_batch(stored, position, expected_position):
                return False
            self._write(conn, changes)
            conn.execute(
                "INSERT INTO positions VALUES (?, ?) ON CONFLICT (projection) DO UPDATE SET position=excluded.position",
                (projection, position),
            )
        return True

    @staticmethod
    def _write(conn: sqlite3.Connection, changes: ViewChanges) -> None:
        conn.executemany(
            f"INSERT OR IGNORE INTO actions ({_ACTION_COLUMNS}) VALUES ({','.join('?' * 26)})",
            [
                (
                    a.action_id,
                    a.account_id,
                    a.entity_type,
                    a.action_type,
                    a.match_by,
                    a.source_name,
                    a.chunk_size,
                    a.expected_total,
                    a.created_at,
                    a.status,
                    a.total,
                    a.chunk_count,
                    a.chunks_done,
                    a.succeeded,
                    a.failed,
                    a.skipped,
                    a.first_outcome_at,
                    a.last_outcome_at,
                    a.finished_at,
                    a.discrepancy,
                    orjson.dumps(a.actor) if a.actor is not None else None,
                    a.reverts,
                    a.reverted_by,
                    a.retry_of,
                    a.retried_by,
                    int(a.dry_run),
                )
                for a in changes.new_actions
            ],
        )
        keys = _action_keys(conn, {line.action_id for line in changes.log_lines})
        log_rows = [_log_row(keys[line.action_id], line) for line in changes.log_lines if line.action_id in keys]
        conn.executemany(
            f"INSERT OR IGNORE INTO record_logs (action_key, {_LOG_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            log_rows,
        )
        # An entity's history starts at the record that inserted it; where that entity's
        # id is the one its row makes, its log line says so, and the entry is read from
        # there (``_own_creations``): ~27 bytes a record less.
        own = {r[_LOG_POSITION] for r in log_rows if _is_own_creation(r[_LOG_OUTCOME], r[_LOG_ENTITY], r[_LOG_OP])}
        conn.executemany(
            "INSERT OR IGNORE INTO entity_history VALUES (?,?)",
            [(id_bytes(h.entity_id), h.position) for h in changes.entity_history if h.position not in own],
        )
        conn.executemany(
            "INSERT OR IGNORE INTO entity_keys VALUES (?,?,?,?,?)",
            [(k.account_id, k.entity_type, k.key, k.entity_id, k.position) for k in changes.entity_keys],
        )
        _merge_deltas(conn, changes.deltas)

    def get_action(self, action_id: str) -> ActionView | None:
        row = (
            self.db.connection()
            .execute(f"SELECT {_ACTION_COLUMNS} FROM actions WHERE action_id=?", (action_id,))
            .fetchone()
        )
        return None if row is None else _action(row)

    def list_actions(
        self, filt: ActionFilter, *, before: tuple[str, str] | None = None, limit: int = 50
    ) -> list[ActionView]:
        where, params = [], []
        for column, value in (
            ("account_id", filt.account_id),
            ("status", filt.status),
            ("entity_type", filt.entity_type),
        ):
            if value is not None:
                where.append(f"{column}=?")
                params.append(value)
        if filt.created_from:
            where.append("created_at>=?")
            params.append(filt.created_from)
        if filt.created_to:
            where.append("created_at<?")
            params.append(filt.created_to)
        if before is not None:
            where.append("(created_at, action_id) < (?, ?)")
            params += list(before)
        sql = f"SELECT {_ACTION_COLUMNS} FROM actions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, action_id DESC LIMIT ?"
        rows = self.db.connection().execute(sql, [*params, limit]).fetchall()
        return [_action(r) for r in rows]

    def logs(
        self, action_id: str, *, outcome: str | None = None, after_row: int = 0, limit: int = 1000
    ) -> list[LogLine]:
        conn = self.db.connection()
        key = _action_keys(conn, {action_id}).get(action_id)
        if key is None:
            return []
        sql = f"SELECT {_LOG_COLUMNS} FROM record_logs WHERE action_key=? AND row>?"
        params: list[Any] = [key, after_row]
        if outcome is not None:
            code = _OUTCOME_CODES[outcome]
            sql += " AND outcome IS NULL" if code is None else " AND outcome=?"
            params += [] if code is None else [code]
        sql += " ORDER BY row LIMIT ?"
        rows = conn.execute(sql, [*params, limit]).fetchall()
        return [_log_line(action_id, r) for r in rows]

    def entity_positions(self, entity_id: str) -> list[int]:
        conn = self.db.connection()
        stored = id_bytes(entity_id)
        rows = conn.execute("SELECT position FROM entity_history WHERE entity_id=?", (stored,)).fetchall()
        positions = {int(r[0]) for r in rows}
        if isinstance(stored, bytes):
            row = int.from_bytes(stored[8:], "big") - _OWN_LOW  # the row that made it, if one did
            for prefix, action_key in self._actions_by_entity_prefix(conn):
                if prefix != stored[:8] or row < 0:
                    continue
                line = conn.execute(
                    "SELECT position, outcome, entity_id, op FROM record_logs WHERE action_key=? AND row=?",
                    (action_key, row),
                ).fetchone()
                if line is not None and _is_own_creation(line[1], line[2], line[3]):
                    positions.add(int(line[0]))
        return sorted(positions)

    def entities_holding(self, account_id: str, entity_type: str, key: str) -> list[EntityKey]:
        rows = (
            self.db.connection()
            .execute(
                "SELECT account_id, entity_type, key, entity_id, position FROM entity_keys"
                " WHERE account_id=? AND entity_type=? AND key=? ORDER BY position",
                (account_id, entity_type, key),
            )
            .fetchall()
        )
        return [EntityKey(*r) for r in rows]

    def entity_history_by_entity(self, after: tuple[str, int] | None, limit: int) -> list[EntityHistoryEntry]:
        """A page of the index in stored order (all text ids, then byte ids by their
        bytes; then position): the entries stored, merged with the creations read from
        the log lines (``_own_creations``)."""
        conn = self.db.connection()
        start: tuple[bytes | str, int] = (id_bytes(after[0]), after[1]) if after and after[0] else ("", 0)
        stored = conn.execute(
            "SELECT entity_id, position FROM entity_history WHERE (entity_id, position) > (?, ?)"
            " ORDER BY entity_id, position LIMIT ?",
            (*start, limit),
        ).fetchall()
        merged = heapq.merge(stored, self._own_creations(conn, start, limit), key=_stored_order)
        page: list[EntityHistoryEntry] = []
        for entity_id, position in merged:
            entry = EntityHistoryEntry(id_text(entity_id), position)
            if page and page[-1] == entry:
                continue  # stored by a release that kept creations in the index too
            page.append(entry)
            if len(page) == limit:
                break
        return page

    def _own_creations(
        self, conn: sqlite3.Connection, after: tuple[bytes | str, int], limit: int
    ) -> list[tuple[bytes, int]]:
        """Up to ``limit`` index entries of entities inserted with the ids their rows
        make, after ``after`` in stored order: (entity id bytes, position), read from the
        log lines of every action but dry runs (whose outcomes are no entity's history)."""
        after_id, after_position = after
        found: list[tuple[bytes, int]] = []
        for prefix, action_key in self._actions_by_entity_prefix(conn):
            first_row = 0
            if isinstance(after_id, bytes):
                if prefix < after_id[:8]:
                    continue
                if prefix == after_id[:8]:
                    low = int.from_bytes(after_id[8:], "big")
                    first_row = max(0, low - _OWN_LOW)
                    if low >> 62 > _OWN_LOW >> 62:
                        continue
            rows = conn.execute(
                "SELECT row, position, outcome, entity_id, op FROM record_logs WHERE action_key=? AND row>=?"
                " AND outcome IS NULL AND entity_id IS NULL ORDER BY row LIMIT ?",
                (action_key, first_row, limit + 1),
            ).fetchall()
            for row, position, outcome, entity, op in rows:
                if not _is_own_creation(outcome, entity, op):
                    continue
                entry = (prefix + (_OWN_LOW | row).to_bytes(8, "big"), position)
                if _stored_order(entry) > _stored_order((after_id, after_position)):
                    found.append(entry)
                    if len(found) == limit:
                        return found
        return found

    def _actions_by_entity_prefix(self, conn: sqlite3.Connection) -> list[tuple[bytes, int]]:
        """(the 8 bytes every entity id an action's rows make starts with, the action's
        key) of every action but dry runs, in the order of those bytes."""
        rows = conn.execute("SELECT action_key, action_id FROM actions WHERE dry_run=0").fetchall()
        found = []
        for action_key, action_id in rows:
            try:
                prefix = entity_id_prefix(UUID(action_id))
            except ValueError:  # not a UUID: its rows make no ids of their own
                continue
            found.append((prefix.to_bytes(8, "big"), int(action_key)))
        return sorted(found)

    def close(self) -> None:
        self.db.close()


def _stored_order(entry: tuple[bytes | str, int]) -> tuple[bool, bytes | str, int]:
    """SQLite's order of (entity id, position): every text before all bytes."""
    return isinstance(entry[0], bytes), entry[0], entry[1]


def _action_keys(conn: sqlite3.Connection, action_ids: set[str]) -> dict[str, int]:
    """The small keys log lines name their actions by (the action's row in ``actions``)."""
    ids = sorted(action_ids)
    keys: dict[str, int] = {}
    for start in range(0, len(ids), _READ_BATCH):
        batch = ids[start : start + _READ_BATCH]
        marks = ",".join("?" * len(batch))
        keys.update(conn.execute(f"SELECT action_id, action_key FROM actions WHERE action_id IN ({marks})", batch))
    return keys


def _merge_deltas(conn: sqlite3.Connection, deltas: dict[str, ActionDelta]) -> None:
    """Each delta merged into its action row (``projections.merge.merged``); a delta of
    an action this store never created changes nothing."""
    ids = list(deltas)
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(ids), _READ_BATCH):
        batch = ids[start : start + _READ_BATCH]
        marks = ",".join("?" * len(batch))
        found = conn.execute(f"SELECT action_id, {', '.join(MUTABLE)} FROM actions WHERE action_id IN ({marks})", batch)
        for action_id, *values in found:
            fields = merged(dict(zip(MUTABLE, values, strict=True)), deltas[action_id])
            rows.append((*(fields[name] for name in MUTABLE), action_id))
    conn.executemany(_UPDATE_ACTION, rows)
