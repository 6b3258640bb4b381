"""Entity store on SQLite: one table, unique (account, entity_type, unique_key)
enforced by an index. Every statement names the account, so one account's entities
are invisible to another's lookups, duplicate checks and updates.

The primary key is the id alone: with (entity_type, id) SQLite's planner chose a
prefix scan of the primary key over the unique index for key lookups, which made
every chunk scan the whole table (measured: quadratic, 4k records/s at 1M rows).

A row is kept small (measured on a 100,000-contact import, dbstat: 296 + 84 bytes a
record in the table and its unique index with these columns as text, 169 + 50 so):
- the id as its 16 bytes when it is a UUID's text (``infrastructure.sqlite.ids``);
- the account id, entity type and last action id as keys of ``entity_names``
  (``infrastructure.sqlite.names``);
- created_at and updated_at as microseconds since the epoch (UTC);
- the data as JSON compressed as ``infrastructure.stored_json`` says; data stored
  before as plain JSON is read as it was.
A store written with text columns (``account_id``) is rewritten in this layout when
it is opened; a store from before accounts waits for ``bulkactions migrate``.

Each batch runs in one BEGIN IMMEDIATE transaction: existing keys are read and the
new rows written under the same write lock, so no other worker can take a key in
between; within the batch, items are decided in order, by
``application.entity_changes.decide_update`` (the store only loads and writes).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
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
from infrastructure.sqlite.ids import first_stored_uuid_after, id_bytes, id_text
from infrastructure.sqlite.names import NameKeys, NamesInWrite, names_schema
from infrastructure.stored_json import ENTITY_DATA, ENTITY_DATA_KEY_FIRST, packed, unpacked

_NAMES = ("entity_names", "key", "name")
EntityNames = NamesInWrite[str, sqlite3.Connection]
SCHEMA = f"""
{names_schema(*_NAMES)};
CREATE TABLE IF NOT EXISTS entities (
    id BLOB PRIMARY KEY,        -- a UUID's 16 bytes, or the text of any other id
    account INTEGER NOT NULL,   -- entity_names keys
    entity_type INTEGER NOT NULL,
    unique_key TEXT NOT NULL,
    data BLOB NOT NULL,
    last_action INTEGER,
    last_row INTEGER,
    created_at INTEGER NOT NULL, -- microseconds since the epoch, UTC
    -- Set at insert too: a row that grows when first updated (NULL until then) made a
    -- 200,000-row UPDATE 7-12% slower (page splits), more than its 8 bytes are worth.
    updated_at INTEGER NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    last_change BLOB
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS entities_by_key ON entities (account, entity_type, unique_key);
CREATE TABLE IF NOT EXISTS entity_changes (
    account_id TEXT NOT NULL,
    action_id TEXT NOT NULL,
    row INTEGER NOT NULL,
    entity_id TEXT NOT NULL,
    change BLOB NOT NULL,
    PRIMARY KEY (account_id, action_id, row)
) WITHOUT ROWID
"""
_COLUMNS = "id, unique_key, data, version, last_action, last_row, last_change"
_INSERT = (
    "INSERT INTO entities (id, account, entity_type, unique_key, data, last_action, last_row,"
    " created_at, updated_at, version, last_change) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
)

_MAX_PARAMS = 900
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _batches(values: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(values), _MAX_PARAMS):
        yield values[start : start + _MAX_PARAMS]


def _columns(conn: sqlite3.Connection) -> set[str]:
    return {row[1] for row in conn.execute("PRAGMA table_info(entities)")}


def _has_legacy_schema(conn: sqlite3.Connection) -> bool:
    """An entities table from before entities belonged to accounts (no account column)."""
    columns = _columns(conn)
    return bool(columns) and not columns & {"account", "account_id"}


def _now() -> int:
    return time.time_ns() // 1000


def _micros(stored: str) -> int:
    """An ISO time as the text layouts stored it (UTC; naive in the oldest stores)."""
    moment = datetime.fromisoformat(stored)
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _stored(row: tuple[Any, ...], name_of: Callable[[int], str]) -> StoredEntity:
    entity_id, key, data, version, last_action, last_row, last_change = row
    change = RecordedChange.of_json(orjson.loads(last_change)) if last_change else None
    action = None if last_action is None else name_of(last_action)
    values = stored_values(data, key)
    return StoredEntity(id_text(entity_id), key, values, version, action, last_row, change)


def _packed_values(values: dict[str, Any], key: str) -> bytes:
    """An entity's data as stored. Its unique key is in its own column: the field that
    holds it (an email, a domain) is stored first, as null (~11 bytes a contact)."""
    for name, value in values.items():
        if value == key:
            keyed: dict[str, Any] = {name: None}
            keyed.update((other, v) for other, v in values.items() if other != name)
            return packed(orjson.dumps(keyed), ENTITY_DATA_KEY_FIRST)
    return packed(orjson.dumps(values), ENTITY_DATA)


def stored_values(stored: bytes, key: str) -> dict[str, Any]:
    """An entity's data from its stored ``data`` and ``unique_key`` columns (what
    ``_packed_values`` left out put back)."""
    values: dict[str, Any] = orjson.loads(unpacked(stored))
    if stored[0] == ENTITY_DATA_KEY_FIRST.tag:
        values[next(iter(values))] = key
    return values


def _load(
    conn: sqlite3.Connection,
    name_of: Callable[[int], str],
    scope: tuple[int, int],
    column: str,
    values: list[str],
) -> list[StoredEntity]:
    found: list[StoredEntity] = []
    for batch in _batches(sorted(set(values))):
        marks = ",".join("?" * len(batch))
        stored = [id_bytes(v) for v in batch] if column == "id" else batch
        cur = conn.execute(
            f"SELECT {_COLUMNS} FROM entities WHERE account=? AND entity_type=? AND {column} IN ({marks})",
            [*scope, *stored],
        )
        found += [_stored(row, name_of) for row in cur.fetchall()]
    return found


class SQLiteEntityStore:
    def __init__(self, path: Path | str) -> None:
        # The unique-key index takes inserts all over its pages: give it a larger cache.
        self.db = SQLiteDatabase(path, cache_mib=32)
        self._names = NameKeys(*_NAMES, str)
        self._legacy = _has_legacy_schema(self.db.connection())
        if not self._legacy:
            self._open()

    def _open(self) -> None:
        with self._names.writing(self.db) as names:
            # Checked again under the write lock: `serve` and its worker open the same
            # file at once, and only the first may rewrite it.
            if "account_id" in _columns(names.conn):
                _rewrite_text_layout(names)
            for statement in statements(SCHEMA):
                names.conn.execute(statement)

    def _scope(self, conn: sqlite3.Connection, account_id: str, entity_type: str) -> tuple[int, int] | None:
        """The keys of a committed account and type; None when either was never stored."""
        account, kind = self._names.key(conn, account_id), self._names.key(conn, entity_type)
        return None if account is None or kind is None else (account, kind)

    def _name_of(self, conn: sqlite3.Connection) -> Callable[[int], str]:
        return lambda key: self._names.name(conn, key)

    # ------------------------------------------------------------------ inserts

    def insert_many(self, account_id: str, entity_type: str, items: Sequence[NewEntity]) -> list[InsertResult]:
        now = _now()
        with self._names.writing(self.db) as names:
            conn, scope = names.conn, (names.key_made(account_id), names.key_made(entity_type))
            keys = [i.unique_key for i in items]
            holders = {e.key: e.ref() for e in _load(conn, names.name, scope, "unique_key", keys)}
            actions: dict[str, int] = {}
            results: list[InsertResult] = []
            new_rows = []
            for item in items:
                holder = holders.get(item.unique_key)
                if holder is not None:
                    results.append(InsertResult(False, holder))
                    continue
                holders[item.unique_key] = EntityRef(item.entity_id, item.action_id, item.row)
                action = actions.get(item.action_id)
                if action is None:
                    action = actions[item.action_id] = names.key_made(item.action_id)
                new_rows.append(
                    (
                        id_bytes(item.entity_id),
                        *scope,
                        item.unique_key,
                        _packed_values(item.values, item.unique_key),
                        action,
                        item.row,
                        now,
                        now,
                        1,
                        None,
                    )
                )
                results.append(InsertResult(True))
            conn.executemany(_INSERT, new_rows)
        return results

    # ------------------------------------------------------------------ updates

    def update_many(self, account_id: str, entity_type: str, items: Sequence[EntityChange]) -> list[UpdateResult]:
        now = _now()
        with self._names.writing(self.db) as names:
            scope = (names.key_made(account_id), names.key_made(entity_type))
            batch = _Batch(self._targets(names, scope, items))
            journaled = self._journaled(names.conn, account_id, items)
            results = [batch.apply(item, journaled.get((item.action_id, item.row))) for item in items]
            self._store(names, batch, now, account_id, scope)
        return results

    @staticmethod
    def _targets(names: EntityNames, scope: tuple[int, int], items: Sequence[EntityChange]) -> list[StoredEntity]:
        ids = [i.match_value for i in items if i.match == "id"]
        keys = [i.match_value for i in items if i.match == "unique"]
        keys += [i.new_unique_key for i in items if i.new_unique_key]
        loaded = _load(names.conn, names.name, scope, "id", ids)
        return loaded + _load(names.conn, names.name, scope, "unique_key", keys)

    def revert_many(self, account_id: str, entity_type: str, items: Sequence[EntityRevert]) -> list[UpdateResult]:
        now = _now()
        with self._names.writing(self.db) as names:
            conn, scope = names.conn, (names.key_made(account_id), names.key_made(entity_type))
            loaded = _load(conn, names.name, scope, "id", [i.entity_id for i in items])
            keys = [i.key for i in items if i.kind == "recreate" and i.key]
            batch = _Batch(loaded + _load(conn, names.name, scope, "unique_key", keys))
            journaled = self._journaled(conn, account_id, items)
            results = [batch.revert(item, journaled.get((item.action_id, item.row))) for item in items]
            self._store(names, batch, now, account_id, scope)
            self._remove_and_create(names, batch, now, scope)
        return results

    def delete_many(self, account_id: str, entity_type: str, items: Sequence[EntityDelete]) -> list[UpdateResult]:
        with self._names.writing(self.db) as names:
            conn, scope = names.conn, (names.key_made(account_id), names.key_made(entity_type))
            ids = [i.match_value for i in items if i.match == "id"]
            keys = [i.match_value for i in items if i.match == "unique"]
            loaded = _load(conn, names.name, scope, "id", ids)
            batch = _Batch(loaded + _load(conn, names.name, scope, "unique_key", keys))
            journaled = self._journaled(conn, account_id, items)
            results = [batch.delete(item, journaled.get((item.action_id, item.row))) for item in items]
            now = _now()
            self._store(names, batch, now, account_id, scope)
            self._remove_and_create(names, batch, now, scope)
        return results

    @staticmethod
    def _remove_and_create(names: EntityNames, batch: _Batch, now: int, scope: tuple[int, int]) -> None:
        names.conn.executemany(
            "DELETE FROM entities WHERE account=? AND entity_type=? AND id=?",
            [(*scope, id_bytes(entity_id)) for entity_id in batch.removed],
        )
        names.conn.executemany(_INSERT, [_created_row(e, now, names, scope) for e in batch.created])

    def _store(self, names: EntityNames, batch: _Batch, now: int, account_id: str, scope: tuple[int, int]) -> None:
        conn = names.conn
        # The unique key is set only where it changed: SQLite rewrites an index's entries
        # whenever its column is SET, even to the same value (measured: 100,000 updates
        # 1.23 s with the key in the SET list, 0.34 s without).
        conn.executemany(
            "UPDATE entities SET data=?, version=?, last_action=?, last_row=?, last_change=?,"
            " updated_at=? WHERE account=? AND entity_type=? AND id=?",
            [_update_row(e, now, names, scope) for e in batch.written.values()],
        )
        conn.executemany(
            "UPDATE entities SET unique_key=? WHERE account=? AND entity_type=? AND id=?",
            [(e.key, *scope, id_bytes(e.id)) for e in batch.written.values() if e.id in batch.rekeyed],
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
        with self._names.writing(self.db) as names:
            account, kind = names.key(account_id), names.key(entity_type)
            actions = {s.action_id: names.key(s.action_id) for s in stored}
            names.conn.executemany(
                "UPDATE entities SET last_change=NULL WHERE account=? AND entity_type=? AND id=?"
                " AND last_action=? AND last_row=? AND last_change IS NOT NULL",
                [(account, kind, id_bytes(s.entity_id), actions[s.action_id], s.row) for s in stored],
            )
            # The journal holds a change only when another writer rewrote its entity before
            # it was confirmed: usually nothing, so look once before a DELETE per row.
            marks = ",".join("?" * len(actions))
            journaled = names.conn.execute(
                f"SELECT 1 FROM entity_changes WHERE account_id=? AND action_id IN ({marks}) LIMIT 1",
                [account_id, *actions],
            ).fetchone()
            if journaled is not None:
                names.conn.executemany(
                    "DELETE FROM entity_changes WHERE account_id=? AND action_id=? AND row=?",
                    [(account_id, s.action_id, s.row) for s in stored],
                )

    def forget_changes(self, account_id: str, action_id: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM entity_changes WHERE account_id=? AND action_id=?", (account_id, action_id))

    # ------------------------------------------------------------------ reads

    def get(self, account_id: str, entity_type: str, entity_id: str) -> dict[str, Any] | None:
        row = self._row("data, unique_key", account_id, entity_type, entity_id)
        return None if row is None else stored_values(row[0], row[1])

    def load(self, account_id: str, entity_type: str, ids: Sequence[str], keys: Sequence[str]) -> list[StoredEntity]:
        conn = self.db.connection()
        scope = self._scope(conn, account_id, entity_type)
        if scope is None:
            return []
        name_of = self._name_of(conn)
        return _load(conn, name_of, scope, "id", list(ids)) + _load(conn, name_of, scope, "unique_key", list(keys))

    def id_of(self, account_id: str, entity_type: str, unique_key: str) -> str | None:
        return self.ids_of(account_id, entity_type, [unique_key]).get(unique_key)

    def ids_of(self, account_id: str, entity_type: str, unique_keys: Sequence[str]) -> dict[str, str]:
        conn = self.db.connection()
        scope = self._scope(conn, account_id, entity_type)
        found: dict[str, str] = {}
        for batch in _batches(sorted(set(unique_keys)) if scope is not None else []):
            marks = ",".join("?" * len(batch))
            rows = conn.execute(
                f"SELECT unique_key, id FROM entities WHERE account=? AND entity_type=? AND unique_key IN ({marks})",
                [*(scope or ()), *batch],
            ).fetchall()
            found.update((key, id_text(stored)) for key, stored in rows)
        return found

    def version(self, account_id: str, entity_type: str, entity_id: str) -> int | None:
        row = self._row("version", account_id, entity_type, entity_id)
        return None if row is None else int(row[0])

    def _row(self, column: str, account_id: str, entity_type: str, entity_id: str) -> tuple[Any, ...] | None:
        conn = self.db.connection()
        scope = self._scope(conn, account_id, entity_type)
        if scope is None:
            return None
        found: tuple[Any, ...] | None = conn.execute(
            f"SELECT {column} FROM entities WHERE account=? AND entity_type=? AND id=?",
            (*scope, id_bytes(entity_id)),
        ).fetchone()
        return found

    def entities_page(self, after_id: str | None, limit: int) -> list[EntityRow]:
        """Entities in id text order. SQLite orders every text before every bytes value,
        while a UUID's bytes sort among the other ids by its text: the ids kept as text
        and those kept as bytes are read as two ranges and merged."""
        conn = self.db.connection()
        after = after_id or ""
        select = "SELECT id, account, entity_type, unique_key, data FROM entities"
        rows = conn.execute(f"{select} WHERE id > ? AND id < X'' ORDER BY id LIMIT ?", (after, limit)).fetchall()
        uuids_from = first_stored_uuid_after(after)
        if uuids_from is not None:
            bound, inclusive = uuids_from
            where = "id >= ?" if inclusive else "id > ?"
            rows += conn.execute(f"{select} WHERE {where} ORDER BY id LIMIT ?", (bound, limit)).fetchall()
        named = self._names.name
        page = sorted(((id_text(r[0]), r) for r in rows), key=lambda pair: pair[0])[:limit]
        return [
            EntityRow(text, named(conn, r[1]), named(conn, r[2]), r[3], stored_values(r[4], r[3])) for text, r in page
        ]

    def count(self, account_id: str, entity_type: str) -> int:
        conn = self.db.connection()
        scope = self._scope(conn, account_id, entity_type)
        if scope is None:
            return 0
        row = conn.execute("SELECT COUNT(*) FROM entities WHERE account=? AND entity_type=?", scope).fetchone()
        return int(row[0])

    # ------------------------------------------------------------------ migration

    def needs_owner_migration(self) -> bool:
        return self._legacy

    def assign_owners(self, owner_of: Callable[[str, str | None], str]) -> int:
        """Rewrite a store written before entities had accounts: every entity gets the
        account ``owner_of(entity_id, last_action)`` names, in one transaction."""
        if not self._legacy:
            return 0
        with self._names.writing(self.db) as names:
            rows = _renamed_rows(
                names.conn,
                "id, entity_type, unique_key, data, last_action, last_row, created_at, updated_at",
            )
            # (the oldest layout has no account, version or last change)
            moved = _copy(names, ((r[0], owner_of(r[0], r[4]), *r[1:], 1, None) for r in rows))
        self._legacy = False
        return moved

    def close(self) -> None:
        self.db.close()


def _renamed_rows(conn: sqlite3.Connection, columns: str) -> Iterable[tuple[Any, ...]]:
    """Move the text-layout table aside, make the tables of this layout, and read the
    old rows (as ``columns``) a page at a time; the old table is dropped once read."""
    conn.execute("ALTER TABLE entities RENAME TO entities_as_text")
    for statement in statements(SCHEMA):
        conn.execute(statement)
    cursor = conn.execute(f"SELECT {columns} FROM entities_as_text")
    while page := cursor.fetchmany(5000):
        yield from page
    conn.execute("DROP TABLE entities_as_text")


def _rewrite_text_layout(names: EntityNames) -> None:
    """Rewrite a store of the layout before this one (names, ids and times as text)."""
    present = _columns(names.conn)
    # version and last_change were added to that layout while stores were in use.
    version = "version" if "version" in present else "1"
    last_change = "last_change" if "last_change" in present else "NULL"
    columns = "id, account_id, entity_type, unique_key, data, last_action, last_row, created_at, updated_at"
    _copy(names, _renamed_rows(names.conn, f"{columns}, {version}, {last_change}"))


def _copy(names: EntityNames, rows: Iterable[tuple[Any, ...]]) -> int:
    """Write rows of the text layouts, (id, account_id, entity_type, unique_key, data,
    last_action, last_row, created_at, updated_at, version, last_change), in this one."""
    key = names.key_made
    copied = 0
    page: list[tuple[Any, ...]] = []
    for entity_id, account, kind, unique_key, data, action, row, created, updated, version, change in rows:
        last_action = None if action is None else key(action)
        named = (id_bytes(entity_id), key(account), key(kind), unique_key, data, last_action, row)
        page.append((*named, _micros(created), _micros(updated), version, change))
        if len(page) == 5000:
            names.conn.executemany(_INSERT, page)
            copied, page = copied + len(page), []
    names.conn.executemany(_INSERT, page)
    return copied + len(page)


def _update_row(e: StoredEntity, now: int, names: EntityNames, scope: tuple[int, int]) -> tuple[Any, ...]:
    data = _packed_values(e.values, e.key)
    action = None if e.last_action is None else names.key_made(e.last_action)
    return (data, e.version, action, e.last_row, _json(e.last_change), now, *scope, id_bytes(e.id))


def _created_row(e: StoredEntity, now: int, names: EntityNames, scope: tuple[int, int]) -> tuple[Any, ...]:
    data, change = _packed_values(e.values, e.key), _json(e.last_change)
    action = None if e.last_action is None else names.key_made(e.last_action)
    return (id_bytes(e.id), *scope, e.key, data, action, e.last_row, now, now, e.version, change)


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
