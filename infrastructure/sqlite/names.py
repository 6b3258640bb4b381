"""The names an entity row repeats (its account id, entity type and last action id)
as small integer keys of one table, ``entity_names``: a key takes one or two bytes in
a row and in the unique-key index where the name took tens.

A name's key never changes once committed, so each store caches name -> key and
key -> name. A key made inside a write transaction is cached only after that
transaction commits: had it rolled back, another process could take the same key for
another name, and the cached key would then point at that name.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from infrastructure.sqlite.database import SQLiteDatabase

NAMES_SCHEMA = "CREATE TABLE IF NOT EXISTS entity_names (key INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)"


class NameKeys:
    """The committed names of one store's file, with their keys, cached."""

    def __init__(self) -> None:
        self._keys: dict[str, int] = {}
        self._names: dict[int, str] = {}

    def key(self, conn: sqlite3.Connection, name: str) -> int | None:
        """The key of a committed name, None for a name never stored (a read makes none).
        ``conn`` is outside a write transaction, or in one that has made no names."""
        key = self._keys.get(name)
        if key is None:
            row = conn.execute("SELECT key FROM entity_names WHERE name=?", (name,)).fetchone()
            if row is not None:
                key = self._remember(name, int(row[0]))
        return key

    def name(self, conn: sqlite3.Connection, key: int) -> str:
        """The name of a key read from a committed row."""
        name = self._names.get(key)
        if name is None:
            (found,) = conn.execute("SELECT name FROM entity_names WHERE key=?", (key,)).fetchone()
            self._remember(found, key)
            name = found
        return name

    def _remember(self, name: str, key: int) -> int:
        self._names[key] = name
        self._keys[name] = key
        return key

    @contextmanager
    def writing(self, db: SQLiteDatabase) -> Iterator[NamesInWrite]:
        """A write transaction (``db.write()``) that may make names."""
        with db.write() as conn:
            names = NamesInWrite(conn, self)
            yield names
        for name, key in names.made.items():  # committed: now they may be cached
            self._remember(name, key)


class NamesInWrite:
    """Names as one write transaction sees them: the committed ones and those it made."""

    def __init__(self, conn: sqlite3.Connection, committed: NameKeys) -> None:
        self.conn = conn
        self._committed = committed
        self.made: dict[str, int] = {}
        self._made_names: dict[int, str] = {}

    def key(self, name: str) -> int | None:
        """The key of a name, None for a name neither committed nor made here."""
        made = self.made.get(name)
        # Under the write lock, a stored name this transaction did not make is committed.
        return made if made is not None else self._committed.key(self.conn, name)

    def key_made(self, name: str) -> int:
        """The key of a name, made now if the name is new."""
        key = self.key(name)
        if key is None:
            made = self.conn.execute("INSERT INTO entity_names (name) VALUES (?)", (name,)).lastrowid
            assert made is not None
            key = self.made[name] = made
            self._made_names[key] = name
        return key

    def name(self, key: int) -> str:
        made = self._made_names.get(key)
        return made if made is not None else self._committed.name(self.conn, key)
