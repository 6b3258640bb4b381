"""The name -> key tables the SQLite stores share (``infrastructure.sqlite.names``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from infrastructure.sqlite.database import SQLiteDatabase
from infrastructure.sqlite.names import NameKeys


def _names(db: SQLiteDatabase, max_cached: int = 8192) -> NameKeys[str]:
    names = NameKeys("names", "key", "name", str.upper, max_cached=max_cached)
    db.apply_schema(names.schema)
    return names


def test_keys_made_in_one_write_are_read_back_by_another_store_and_decoded(tmp_path: Path) -> None:
    db = SQLiteDatabase(tmp_path / "names.db")
    with _names(db).writing(db) as names:
        made = names.keys_made(["a", "b", "a"])
        assert names.key_made("b") == made["b"] and names.name(made["a"]) == "A"
    other = _names(SQLiteDatabase(tmp_path / "names.db"))
    conn = db.connection()
    assert {name: other.key(conn, name) for name in "abc"} == {"a": made["a"], "b": made["b"], "c": None}
    assert other.name(conn, made["b"]) == "B"


def test_a_name_made_in_a_write_that_rolled_back_is_not_cached(tmp_path: Path) -> None:
    db = SQLiteDatabase(tmp_path / "names.db")
    names = _names(db)
    with pytest.raises(RuntimeError), names.writing(db) as in_write:
        rolled_back = in_write.key_made("lost")
        raise RuntimeError
    # Another process takes the same key for another name; this store must not mix them.
    with _names(SQLiteDatabase(tmp_path / "names.db")).writing(db) as other:
        assert other.key_made("taken") == rolled_back
    conn = db.connection()
    assert names.key(conn, "lost") is None
    assert names.name(conn, rolled_back) == "TAKEN"


def test_a_bounded_cache_still_answers_every_name(tmp_path: Path) -> None:
    db = SQLiteDatabase(tmp_path / "names.db")
    names = _names(db, max_cached=3)
    with names.writing(db) as in_write:
        made = in_write.keys_made(f"n{i}" for i in range(10))
    conn = db.connection()
    for _ in range(2):
        assert {name: names.key(conn, name) for name in made} == made
        assert [names.name(conn, key) for key in made.values()] == [name.upper() for name in made]
