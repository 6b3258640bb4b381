"""Names a store repeats in many rows, kept once in a table of their own and referred
to by small integer keys: the entity store's account ids, entity types and action ids
(``entity_names``), the event store's streams and topics (``event_streams``,
``event_topics``). A key takes one or two bytes in a row and its indexes where the
name took tens.

A name's key never changes once committed, so each store caches name -> key and
key -> name. A key read or made inside a write transaction is cached only after that
transaction commits: had it rolled back, another process could take the same key for
another name, and the cached key would then point at that name.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from infrastructure.sqlite.database import SQLiteDatabase

Name = TypeVar("Name")
# What statements run on: a connection (our stores) or the cursor of the eventsourcing
# library's transaction (the event store).
Executor = sqlite3.Connection | sqlite3.Cursor
ExecutorT = TypeVar("ExecutorT", sqlite3.Connection, sqlite3.Cursor)
# SQLite's limit on host parameters in one statement is 999 in old builds.
_IN_LIST_MAX = 500


def names_schema(table: str, key_column: str, name_column: str) -> str:
    return f"CREATE TABLE IF NOT EXISTS {table} ({key_column} INTEGER PRIMARY KEY, {name_column} TEXT NOT NULL UNIQUE)"


class NameKeys(Generic[Name]):
    """The committed names of one table in one store's file, with their keys, cached.

    ``decode`` turns a stored name into what readers want (a stream's text into the
    originator id the library expects), once per cached key. ``max_cached`` bounds each
    cache: a name evicted is read again when next needed.
    """

    def __init__(
        self,
        table: str,
        key_column: str,
        name_column: str,
        decode: Callable[[str], Name],
        *,
        max_cached: int = 8192,
    ) -> None:
        self.schema = names_schema(table, key_column, name_column)
        self._decode = decode
        self._max_cached = max_cached
        self._select_key = f"SELECT {key_column} FROM {table} WHERE {name_column}=?"
        self._select_name = f"SELECT {name_column} FROM {table} WHERE {key_column}=?"
        self._select_keys = f"SELECT {name_column}, {key_column} FROM {table} WHERE {name_column} IN "
        self._insert = f"INSERT OR IGNORE INTO {table} ({name_column}) VALUES (?)"
        self._keys: dict[str, int] = {}
        self._names: dict[int, Name] = {}

    def key(self, sql: Executor, name: str) -> int | None:
        """The key of a committed name, None for a name never stored (a read makes none).
        ``sql`` is outside a write transaction, or in one that has made no names."""
        key = self._keys.get(name)
        if key is None:
            row = sql.execute(self._select_key, (name,)).fetchone()
            if row is not None:
                key = int(row[0])
                self.remember({name: key})
        return key

    def name(self, sql: Executor, key: int) -> Name:
        """The name of a key read from a committed row."""
        name = self._names.get(key)
        if name is None:
            (found,) = sql.execute(self._select_name, (key,)).fetchone()
            self.remember({found: key})
            # Decoded here, not read back: threads share a store, and another thread's
            # ``remember`` may empty the cache in between (at the bound).
            name = self._decode(found)
        return name

    def remember(self, committed: dict[str, int]) -> None:
        """Cache keys known to be committed."""
        if len(self._keys) + len(committed) > self._max_cached:
            self._keys, self._names = {}, {}
        for name, key in committed.items():
            self._keys[name] = key
            self._names[key] = self._decode(name)

    def in_write(self, sql: ExecutorT) -> NamesInWrite[Name, ExecutorT]:
        """Names as a write transaction on ``sql`` sees them; the caller hands
        ``.made`` to ``remember`` once that transaction has committed."""
        return NamesInWrite(sql, self)

    @contextmanager
    def writing(self, db: SQLiteDatabase) -> Iterator[NamesInWrite[Name, sqlite3.Connection]]:
        """A write transaction (``db.write()``) that may make names."""
        with db.write() as conn:
            names = self.in_write(conn)
            yield names
        self.remember(names.made)  # committed: now they may be cached


class NamesInWrite(Generic[Name, ExecutorT]):
    """Names as one write transaction sees them: the committed ones and those it read
    or made (``made``: cached only once the transaction commits)."""

    def __init__(self, sql: ExecutorT, committed: NameKeys[Name]) -> None:
        self.conn: ExecutorT = sql
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
        return self.keys_made((name,))[name]

    def keys_made(self, names: Iterable[str]) -> dict[str, int]:
        """The keys of ``names``, those not stored yet made now."""
        cached, made = self._committed._keys, self.made
        keys: dict[str, int] = {}
        new: list[str] = []
        for name in names:
            key = made.get(name)
            if key is None:
                key = cached.get(name)
            if key is None:
                new.append(name)
            else:
                keys[name] = key
        if new:
            # Write before reading: in a deferred transaction (the library's) a read would
            # fix the snapshot, and a write after another writer's commit would then fail
            # instead of waiting for the lock.
            new = list(dict.fromkeys(new))
            self.conn.executemany(self._committed._insert, [(name,) for name in new])
            for start in range(0, len(new), _IN_LIST_MAX):
                part = new[start : start + _IN_LIST_MAX]
                rows = self.conn.execute(f"{self._committed._select_keys}({','.join('?' * len(part))})", part)
                for name, key in rows.fetchall():
                    keys[name] = made[name] = key
                    self._made_names[key] = name
        return keys

    def name(self, key: int) -> Name:
        made = self._made_names.get(key)
        return self._committed._decode(made) if made is not None else self._committed.name(self.conn, key)
