"""The SQLite entity store's layout: stores written with text columns are rewritten
when opened, and name keys of a rolled-back write are never used."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from application.entity_changes import RecordedChange
from application.ports.entities import EntityChange, NewEntity
from infrastructure.sqlite.entities import SQLiteEntityStore
from infrastructure.stored_json import ENTITY_DATA, ENTITY_DATA_KEY_FIRST, packed, unpacked
from tests.waiting import run_in_threads

pytestmark = pytest.mark.integration

# The layout before entity_names, as 5f81d73 created it.
_TEXT_LAYOUT = """
CREATE TABLE entities (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL, entity_type TEXT NOT NULL, unique_key TEXT NOT NULL,
    data BLOB NOT NULL, last_action TEXT, last_row INTEGER, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1, last_change BLOB
) WITHOUT ROWID;
CREATE UNIQUE INDEX entities_account_unique_key ON entities (account_id, entity_type, unique_key);
CREATE TABLE entity_changes (
    account_id TEXT NOT NULL, action_id TEXT NOT NULL, row INTEGER NOT NULL, entity_id TEXT NOT NULL,
    change BLOB NOT NULL, PRIMARY KEY (account_id, action_id, row)
) WITHOUT ROWID
"""
_UUID = "0f5c2a9e-1b7d-4c3e-8a6f-2d9e4b1c7a30"
_CHANGE = RecordedChange("act-2", 4, 3, {"first_name": ["A", "B"]})


def _text_layout_store(path: Path) -> None:
    data = packed(b'{"email":"a@x.com","first_name":"B"}')
    created, updated, change = "2026-01-01T10:00:00.123456+00:00", "2026-01-02T10:00:00+00:00", _CHANGE.as_json()
    rows: list[tuple[Any, ...]] = [
        (_UUID, "acme", "contact", "a@x.com", data, "act-2", 4, created, updated, 3, orjson.dumps(change)),
        # (as the oldest stores wrote them: plain JSON, and times without a zone)
        (
            "e1",
            "other",
            "company",
            "x.org",
            b'{"domain":"x.org"}',
            None,
            None,
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00",
            1,
            None,
        ),
    ]
    with sqlite3.connect(path) as conn:
        conn.executescript(_TEXT_LAYOUT)
        conn.executemany("INSERT INTO entities VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
    conn.close()


def test_a_store_written_with_text_columns_is_rewritten_when_opened_and_keeps_every_fact(tmp_path: Path) -> None:
    path = tmp_path / "entities.db"
    _text_layout_store(path)
    store = SQLiteEntityStore(path)
    try:
        [stored] = store.load("acme", "contact", [_UUID], [])
        assert (stored.key, stored.values, stored.version) == ("a@x.com", {"email": "a@x.com", "first_name": "B"}, 3)
        assert (stored.last_action, stored.last_row, stored.last_change) == ("act-2", 4, _CHANGE)
        [plain] = store.load("other", "company", [], ["x.org"])
        assert (plain.id, plain.values, plain.version, plain.last_action, plain.last_row) == (
            "e1",
            {"domain": "x.org"},
            1,
            None,
            None,
        )
        rows = [(r.entity_id, r.account_id, r.entity_type, r.key) for r in store.entities_page(None, 10)]
        assert rows == [(_UUID, "acme", "contact", "a@x.com"), ("e1", "other", "company", "x.org")]
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        times = conn.execute("SELECT created_at, updated_at FROM entities ORDER BY created_at").fetchall()
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_schema")}
    conn.close()
    assert times == [(1767225600000000, 1767225600000000), (1767261600123456, 1767348000000000)]
    assert "entities_as_text" not in tables and "entities_account_unique_key" not in tables


def test_two_processes_opening_a_text_layout_store_at_once_rewrite_it_once(tmp_path: Path) -> None:
    path = tmp_path / "entities.db"
    _text_layout_store(path)
    opened: list[SQLiteEntityStore] = []

    def open_store() -> None:
        opened.append(SQLiteEntityStore(path))

    run_in_threads(open_store, [(), ()])
    assert len(opened) == 2
    for store in opened:
        assert store.count("acme", "contact") == store.count("other", "company") == 1
        store.close()


def test_a_name_key_made_by_a_rolled_back_write_is_never_used(tmp_path: Path) -> None:
    path = tmp_path / "entities.db"
    first, second = SQLiteEntityStore(path), SQLiteEntityStore(path)
    try:
        unstorable = NewEntity("e1", "a@x.com", {"email": {"a set is no JSON"}}, "act-1", 1)
        with pytest.raises(TypeError):  # after the batch made keys for acme and contact
            first.insert_many("acme", "contact", [unstorable])
        # The other store makes its names now: SQLite may give them the rolled-back keys.
        second.insert_many("other", "company", [NewEntity("e2", "x.org", {"domain": "x.org"}, "act-2", 1)])
        first.insert_many("acme", "contact", [NewEntity("e1", "a@x.com", {"email": "a@x.com"}, "act-1", 1)])
        rows = [(r.entity_id, r.account_id, r.entity_type, r.key) for r in first.entities_page(None, 10)]
        assert rows == [("e1", "acme", "contact", "a@x.com"), ("e2", "other", "company", "x.org")]
        assert first.count("other", "company") == second.count("acme", "contact") == 1
    finally:
        first.close()
        second.close()


def test_an_entitys_data_leaves_its_unique_key_to_its_column_and_reads_back_whole(tmp_path: Path) -> None:
    store = SQLiteEntityStore(tmp_path / "entities.db")
    keyed = {"first_name": "Ann", "email": "a@x.com"}
    try:
        store.insert_many("acme", "contact", [NewEntity(_UUID, "a@x.com", keyed, "act-1", 1)])
        created, updated, data = _times_and_data(tmp_path)
        assert data[0] == ENTITY_DATA_KEY_FIRST.tag and b"a@x.com" not in unpacked(data)
        assert updated == created  # set at insert: an update then rewrites the row in place
        assert store.get("acme", "contact", _UUID) == keyed
        store.update_many("acme", "contact", [EntityChange("id", _UUID, {"first_name": "Bo"}, None, "act-2", 1)])
        assert store.get("acme", "contact", _UUID) == {**keyed, "first_name": "Bo"}
        [page] = store.entities_page(None, 10)
        assert page.values == {**keyed, "first_name": "Bo"}
        # Data that does not hold its key is stored whole.
        store.insert_many("acme", "company", [NewEntity("e2", "x.org", {"name": "X"}, "act-1", 2)])
        assert store.get("acme", "company", "e2") == {"name": "X"}
    finally:
        store.close()
    with sqlite3.connect(tmp_path / "entities.db") as conn:
        tags = sorted(row[0][0] for row in conn.execute("SELECT data FROM entities"))
    conn.close()
    assert tags == sorted([ENTITY_DATA_KEY_FIRST.tag, ENTITY_DATA.tag])


def _times_and_data(tmp_path: Path) -> tuple[int, int | None, bytes]:
    with sqlite3.connect(tmp_path / "entities.db") as conn:
        found = conn.execute("SELECT created_at, updated_at, data FROM entities").fetchone()
    conn.close()
    return found[0], found[1], found[2]
