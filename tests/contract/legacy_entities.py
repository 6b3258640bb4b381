"""Entity stores as the release before per-account entities left them, per adapter,
for the migration contract: the same entities written in each store's old layout."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

# (entity id, entity type, unique key, values as JSON, last action, last row)
LegacyRow = tuple[str, str, str, str, str, int]

# The old SQLite schema, as fbab473 created it.
_OLD_SQLITE_SCHEMA = """
CREATE TABLE entities (
    id TEXT PRIMARY KEY,
    entity_type TEXT NOT NULL,
    unique_key TEXT NOT NULL,
    data BLOB NOT NULL,
    last_action TEXT,
    last_row INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE UNIQUE INDEX entities_unique_key ON entities (entity_type, unique_key)
"""


def sqlite_legacy(request: pytest.FixtureRequest, tmp: Path, rows: list[LegacyRow]) -> None:
    with sqlite3.connect(tmp / "entities.db") as conn:
        conn.executescript(_OLD_SQLITE_SCHEMA)
        conn.executemany("INSERT INTO entities VALUES (?,?,?,?,?,?,'2026-01-01T00:00:00','2026-01-01T00:00:00')", rows)
    conn.close()


def mongo_legacy(request: pytest.FixtureRequest, tmp: Path, rows: list[LegacyRow]) -> None:
    import orjson
    from pymongo import MongoClient

    from tests.mongo_server import fresh_database

    uri, name = fresh_database(request)
    client: MongoClient[dict[str, object]] = MongoClient(uri)
    try:
        entities = client[name]["entities"]
        entities.create_index([("entity_type", 1), ("unique_key", 1)], unique=True, name="entity_unique_key")
        entities.insert_many(
            [
                {
                    "_id": entity_id,
                    "entity_type": entity_type,
                    "unique_key": key,
                    "values": orjson.loads(values),
                    "last_action": action,
                    "last_row": row,
                    "rev": 0,
                }
                for entity_id, entity_type, key, values, action, row in rows
            ]
        )
    finally:
        client.close()


LEGACY_WRITERS: dict[str, Callable[[pytest.FixtureRequest, Path, list[LegacyRow]], None]] = {
    "sqlite": sqlite_legacy,
    "mongodb": mongo_legacy,
}
