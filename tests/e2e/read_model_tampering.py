"""Tamper with one action's live read models, or with the entity store, straight in
their store, as someone editing the database by hand would: sqlite3 on the embedded
readmodels.db and entities.db, pymongo on MongoDB. Lines are read back as plain dicts
shaped like ``verify --json`` shows them."""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from pymongo import MongoClient

from domain.bulk_action import entity_id_for
from infrastructure.sqlite.entities import stored_values
from infrastructure.sqlite.ids import id_bytes
from infrastructure.sqlite.read_models import SQLiteReadModelStore

Document = dict[str, Any]


class ReadModels(Protocol):
    def line(self, row: int) -> dict[str, Any]: ...

    def set_outcome(self, row: int, outcome: str) -> None: ...

    def delete_line(self, row: int) -> None: ...

    def add_line(self, row: int, *, like_row: int, outcome: str, duplicate_of_row: int) -> None: ...

    def add_to_count(self, field: str, amount: int) -> None: ...

    def mark_every_failed_line_succeeded(self) -> int: ...

    def delete_a_history_line(self) -> dict[str, Any]: ...


class SQLiteReadModels:
    """Tampers with the raw tables; reads a line back through the store, which knows
    its compact layout (see infrastructure/sqlite/read_models.py)."""

    _CODES = {"succeeded": None, "failed": 1, "skipped": 2}

    def __init__(self, path: Path, action_id: str) -> None:
        self.path, self.action_id = path, action_id

    def _change(self, sql: str, *params: Any) -> int:
        with sqlite3.connect(self.path) as conn:
            changed = conn.execute(sql, params).rowcount
        assert changed > 0, sql
        return changed

    @property
    def _key(self) -> int:
        with sqlite3.connect(self.path) as conn:
            key: int = conn.execute("SELECT action_key FROM actions WHERE action_id=?", (self.action_id,)).fetchone()[0]
        return key

    def line(self, row: int) -> dict[str, Any]:
        store = SQLiteReadModelStore(self.path)
        try:
            [found] = store.logs(self.action_id, after_row=row - 1, limit=1)
        finally:
            store.close()
        assert found.row == row
        return asdict(found)

    def set_outcome(self, row: int, outcome: str) -> None:
        code = self._CODES[outcome]
        self._change("UPDATE record_logs SET outcome=? WHERE action_key=? AND row=?", code, self._key, row)

    def delete_line(self, row: int) -> None:
        self._change("DELETE FROM record_logs WHERE action_key=? AND row=?", self._key, row)

    def add_line(self, row: int, *, like_row: int, outcome: str, duplicate_of_row: int) -> None:
        self._change(
            "INSERT INTO record_logs SELECT action_key, ?, line_offset + ? - row, chunk_no, ?, entity_id, op, errors,"
            " reason, ?, position, links FROM record_logs WHERE action_key=? AND row=?",
            row,
            like_row,
            self._CODES[outcome],
            duplicate_of_row,
            self._key,
            like_row,
        )

    def add_to_count(self, field: str, amount: int) -> None:
        assert field in ("succeeded", "failed", "skipped", "chunks_done")
        self._change(f"UPDATE actions SET {field} = {field} + ? WHERE action_id=?", amount, self.action_id)

    def move_position(self, events: int) -> None:
        self._change("UPDATE positions SET position = position + ?", events)

    def mark_every_failed_line_succeeded(self) -> int:
        return self._change("UPDATE record_logs SET outcome=NULL WHERE action_key=? AND outcome=1", self._key)

    def delete_a_history_line(self) -> dict[str, Any]:
        """The entry of an entity its row inserted is read from that row's log line,
        which names the entity by leaving its id out (it is the one the row makes):
        naming the id outright takes the entry away and leaves the log line as it reads."""
        with sqlite3.connect(self.path) as conn:
            row, position = conn.execute(
                "SELECT row, position FROM record_logs WHERE action_key=? AND outcome IS NULL AND entity_id IS NULL"
                " AND op IS NOT NULL ORDER BY position LIMIT 1 OFFSET 10",
                (self._key,),
            ).fetchone()
        entity_id = str(entity_id_for(uuid.UUID(self.action_id), row))
        self._change(
            "UPDATE record_logs SET entity_id=? WHERE action_key=? AND row=?", id_bytes(entity_id), self._key, row
        )
        return {"entity_id": entity_id, "position": position}


class MongoReadModels:
    def __init__(self, uri: str, database: str, action_id: str) -> None:
        self.client: MongoClient[Document] = MongoClient(uri)
        self.db = self.client[database]
        self.action_id = action_id

    def _id(self, row: int) -> str:
        return f"{self.action_id}:{row}"

    def line(self, row: int) -> dict[str, Any]:
        found = self.db["record_logs"].find_one({"_id": self._id(row)})
        assert found is not None
        return {k: v for k, v in found.items() if k != "_id"}

    def set_outcome(self, row: int, outcome: str) -> None:
        done = self.db["record_logs"].update_one({"_id": self._id(row)}, {"$set": {"outcome": outcome}})
        assert done.modified_count == 1

    def delete_line(self, row: int) -> None:
        assert self.db["record_logs"].delete_one({"_id": self._id(row)}).deleted_count == 1

    def add_line(self, row: int, *, like_row: int, outcome: str, duplicate_of_row: int) -> None:
        line = self.line(like_row) | {"row": row, "outcome": outcome, "duplicate_of_row": duplicate_of_row}
        self.db["record_logs"].insert_one({"_id": self._id(row), **line})

    def add_to_count(self, field: str, amount: int) -> None:
        done = self.db["actions"].update_one({"_id": self.action_id}, {"$inc": {field: amount}})
        assert done.modified_count == 1

    def mark_every_failed_line_succeeded(self) -> int:
        query = {"action_id": self.action_id, "outcome": "failed"}
        return self.db["record_logs"].update_many(query, {"$set": {"outcome": "succeeded"}}).modified_count

    def delete_a_history_line(self) -> dict[str, Any]:
        line = self.db["entity_history"].find().sort("position", 1).skip(10).limit(1)[0]
        assert self.db["entity_history"].delete_one({"_id": line["_id"]}).deleted_count == 1
        return {k: v for k, v in line.items() if k != "_id"}

    def close(self) -> None:
        self.client.close()


class Entities(Protocol):
    def values(self, entity_id: str) -> dict[str, Any]: ...

    def set_field(self, entity_id: str, field: str, value: str) -> None: ...

    def delete(self, entity_id: str) -> None: ...

    def add_like(self, entity_id: str, new_id: str, key: str) -> None: ...


class SQLiteEntities:
    def __init__(self, path: Path) -> None:
        self.path = path

    def values(self, entity_id: str) -> dict[str, Any]:
        with sqlite3.connect(self.path) as conn:
            stored, key = conn.execute(
                "SELECT data, unique_key FROM entities WHERE id=?", (id_bytes(entity_id),)
            ).fetchone()
        return stored_values(stored, key)

    def set_field(self, entity_id: str, field: str, value: str) -> None:
        changed = {**self.values(entity_id), field: value}
        with sqlite3.connect(self.path) as conn:
            conn.execute("UPDATE entities SET data=? WHERE id=?", (json.dumps(changed).encode(), id_bytes(entity_id)))

    def delete(self, entity_id: str) -> None:
        with sqlite3.connect(self.path) as conn:
            assert conn.execute("DELETE FROM entities WHERE id=?", (id_bytes(entity_id),)).rowcount == 1

    def add_like(self, entity_id: str, new_id: str, key: str) -> None:
        data = json.dumps({**self.values(entity_id), "email": key}).encode()
        with sqlite3.connect(self.path) as conn:
            conn.execute(
                "INSERT INTO entities (id, account, entity_type, unique_key, data, created_at, updated_at)"
                " SELECT ?, account, entity_type, ?, ?, created_at, updated_at FROM entities WHERE id=?",
                (id_bytes(new_id), key, data, id_bytes(entity_id)),
            )


class MongoEntities:
    def __init__(self, uri: str, database: str) -> None:
        self.client: MongoClient[Document] = MongoClient(uri)
        self.entities = self.client[database]["entities"]

    def values(self, entity_id: str) -> dict[str, Any]:
        found = self.entities.find_one({"_id": entity_id})
        assert found is not None
        values: dict[str, Any] = found["values"]
        return values

    def set_field(self, entity_id: str, field: str, value: str) -> None:
        assert self.entities.update_one({"_id": entity_id}, {"$set": {f"values.{field}": value}}).modified_count == 1

    def delete(self, entity_id: str) -> None:
        assert self.entities.delete_one({"_id": entity_id}).deleted_count == 1

    def add_like(self, entity_id: str, new_id: str, key: str) -> None:
        found = self.entities.find_one({"_id": entity_id})
        assert found is not None
        values = {**found["values"], "email": key}
        self.entities.insert_one({**found, "_id": new_id, "unique_key": key, "values": values})

    def close(self) -> None:
        self.client.close()


def copy_mongo_database(uri: str, source: str, target: str) -> None:
    """Every collection of ``source`` copied into ``target``, document by document
    (the adapters make their indexes again when they open)."""
    client: MongoClient[Document] = MongoClient(uri)
    try:
        for name in client[source].list_collection_names():
            documents = list(client[source][name].find({}))
            if documents:
                client[target][name].insert_many(documents)
    finally:
        client.close()
