"""Entity store on MongoDB: one collection, a unique index on (account_id, entity_type,
unique_key); every filter names the account, so one account never sees another's.

The unique index, not a read, decides who gets a key: inserts go in one unordered
``insert_many`` and the refused ones (duplicate-key errors) are answered with the
entity that holds the key. Updates are read, decided in order exactly as the SQLite
store decides them, and written with a compare-and-set on a per-entity revision, so
a concurrent writer is never overwritten: a missed compare-and-set re-reads and
decides again. A key change that meets a key taken meanwhile is refused by the index.
Values are stored after a JSON round trip, so ``get`` returns what SQLite returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from pymongo import UpdateOne
from pymongo.errors import DuplicateKeyError

from application.ports.entities import EntityChange, EntityRef, InsertResult, NewEntity, UpdateResult
from infrastructure.mongo.client import Document, connect, exactly, insert_ignoring_duplicates

# A compare-and-set that keeps losing means something else is rewriting the entity
# in a loop; give up loudly rather than spin.
_MAX_ATTEMPTS = 100


class EntityIdConflictError(RuntimeError):
    """An insert's id is taken by an entity that no longer holds the insert's key."""


def _as_json(values: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(orjson.dumps(values))
    return loaded


@dataclass(slots=True)
class _Stored:
    """What the store knows of one entity while deciding a batch."""

    id: str
    key: str
    values: dict[str, Any]
    last_action: str | None
    last_row: int | None
    rev: int

    @classmethod
    def of(cls, doc: Document) -> _Stored:
        return cls(
            doc["_id"],
            doc["unique_key"],
            doc["values"],
            doc.get("last_action"),
            doc.get("last_row"),
            doc.get("rev", 0),
        )

    def ref(self) -> EntityRef:
        return EntityRef(self.id, self.last_action, self.last_row)


class _Batch:
    """The entities one ``update_many`` has seen, by id and by key, kept current as it
    writes (later items of the batch see the changes of earlier ones)."""

    def __init__(self, account_id: str, entity_type: str, now: str) -> None:
        self.account_id, self.entity_type, self.now = account_id, entity_type, now
        self.by_id: dict[str, _Stored] = {}
        self.by_key: dict[str, _Stored] = {}

    def find(self, match: str, value: str) -> _Stored | None:
        return self.by_id.get(value) if match == "id" else self.by_key.get(value)

    def forget(self, stale: _Stored) -> None:
        self.by_id.pop(stale.id, None)
        if self.by_key.get(stale.key) is stale:
            del self.by_key[stale.key]

    def learn(self, fresh: Iterable[_Stored]) -> None:
        for stored in fresh:
            old = self.by_id.get(stored.id)
            if old is not None:
                self.forget(old)
            self.by_id[stored.id] = stored
            self.by_key[stored.key] = stored


# The unique index of the release before entities belonged to accounts: its presence
# means the collection needs ``assign_owners`` (``bulkactions migrate``). Found by its
# keys, not its name: the test server names indexes itself (docs/mongodb-gaps.md).
_LEGACY_KEYS = [("entity_type", 1), ("unique_key", 1)]
_UNIQUE_KEYS = [("account_id", 1), ("entity_type", 1), ("unique_key", 1)]


class MongoEntityStore:
    def __init__(self, uri: str, database: str, *, collection: str = "entities") -> None:
        self._client = connect(uri)
        self._entities = self._client[database][collection]
        self._legacy_index = self._index_named_by(_LEGACY_KEYS)
        if self._legacy_index is None:
            self._create_index()

    def _index_named_by(self, keys: list[tuple[str, int]]) -> str | None:
        for name, info in self._entities.index_information().items():
            if [tuple(k) for k in info["key"]] == keys:
                return str(name)
        return None

    def _create_index(self) -> None:
        self._entities.create_index(_UNIQUE_KEYS, unique=True, name="account_entity_unique_key")

    # ------------------------------------------------------------------ inserts

    def insert_many(self, account_id: str, entity_type: str, items: Sequence[NewEntity]) -> list[InsertResult]:
        now = datetime.now(UTC).isoformat()
        first_with_key: dict[str, int] = {}
        written: list[int] = []  # indexes into items, in the order of the documents
        for index, item in enumerate(items):
            if item.unique_key not in first_with_key:
                first_with_key[item.unique_key] = index
                written.append(index)
        documents = [self._document(account_id, entity_type, items[i], now) for i in written]
        refused = insert_ignoring_duplicates(self._entities, documents)
        holders = self._holders(account_id, entity_type, {items[written[n]].unique_key for n in refused})
        results: dict[int, InsertResult] = {}
        for n, index in enumerate(written):
            item = items[index]
            if n not in refused:
                results[index] = InsertResult(True)
            elif item.unique_key in holders:
                results[index] = InsertResult(False, holders[item.unique_key].ref())
            else:
                # Refused for its id, by an entity that has since moved to another key:
                # the SQLite store fails the same way (primary key violation).
                raise EntityIdConflictError(f"{entity_type} {item.entity_id} exists under another key")
        for index, item in enumerate(items):
            if index not in results:  # a later row of the batch with a key seen earlier in it
                first = first_with_key[item.unique_key]
                holder = results[first].existing or EntityRef(
                    items[first].entity_id, items[first].action_id, items[first].row
                )
                results[index] = InsertResult(False, holder)
        return [results[i] for i in range(len(items))]

    @staticmethod
    def _document(account_id: str, entity_type: str, item: NewEntity, now: str) -> Document:
        return {
            "_id": item.entity_id,
            "account_id": account_id,
            "entity_type": entity_type,
            "unique_key": item.unique_key,
            "values": _as_json(item.values),
            "last_action": item.action_id,
            "last_row": item.row,
            "created_at": now,
            "updated_at": now,
            "rev": 0,
        }

    def _holders(self, account_id: str, entity_type: str, keys: Iterable[str]) -> dict[str, _Stored]:
        found = self._load(account_id, entity_type, "unique_key", list(keys))
        return {s.key: s for s in found}

    def _load(self, account_id: str, entity_type: str, field: str, values: list[str]) -> list[_Stored]:
        if not values:
            return []
        cursor = self._entities.find(
            {
                "account_id": exactly(account_id),
                "entity_type": exactly(entity_type),
                field: {"$in": sorted(set(values))},
            }
        )
        return [_Stored.of(doc) for doc in cursor]

    # ------------------------------------------------------------------ updates

    def update_many(self, account_id: str, entity_type: str, items: Sequence[EntityChange]) -> list[UpdateResult]:
        ids = [i.match_value for i in items if i.match == "id"]
        keys = [i.match_value for i in items if i.match == "unique"]
        keys += [i.new_unique_key for i in items if i.new_unique_key]
        batch = _Batch(account_id, entity_type, datetime.now(UTC).isoformat())
        batch.learn(self._load(account_id, entity_type, "_id", ids))
        batch.learn(self._load(account_id, entity_type, "unique_key", keys))
        return [self._update(batch, item) for item in items]

    def _update(self, batch: _Batch, item: EntityChange) -> UpdateResult:
        for _ in range(_MAX_ATTEMPTS):
            target = batch.find(item.match, item.match_value)
            if target is None:
                return UpdateResult("not_found")
            if target.last_action == item.action_id and (target.last_row or 0) >= item.row:
                # This row's change (or a later row's of the same action) is already stored.
                return UpdateResult("already_applied", target.id)
            new_key = item.new_unique_key
            if new_key == target.key:
                new_key = None
            if new_key:
                holder = batch.by_key.get(new_key)
                if holder is not None and holder.id != target.id:
                    return UpdateResult("duplicate", target.id, holder.ref())
            if self._write(batch, item, target, new_key):
                return UpdateResult("updated", target.id)
        raise RuntimeError(f"{batch.entity_type} {item.match_value}: gave up after {_MAX_ATTEMPTS} tries")

    def _write(self, batch: _Batch, item: EntityChange, target: _Stored, new_key: str | None) -> bool:
        """Compare-and-set one change; on a lost race learn what was stale and say so."""
        merged = {**target.values, **_as_json(item.values)}
        fields: Document = {
            "values": merged,
            "last_action": item.action_id,
            "last_row": item.row,
            "updated_at": batch.now,
            "rev": target.rev + 1,
        }
        if new_key:
            fields["unique_key"] = new_key
        try:
            result = self._entities.update_one({"_id": exactly(target.id), "rev": target.rev}, {"$set": fields})
        except DuplicateKeyError:
            # The new key was taken after we looked: learn who holds it and decide again.
            batch.learn(self._load(batch.account_id, batch.entity_type, "unique_key", [new_key or ""]))
            return False
        batch.forget(target)
        if result.matched_count == 0:
            # Someone changed the entity since we read it: read it (and whatever now
            # answers to the key we matched on) again.
            keys = [item.match_value] if item.match == "unique" else []
            batch.learn(self._load(batch.account_id, batch.entity_type, "_id", [target.id]))
            batch.learn(self._load(batch.account_id, batch.entity_type, "unique_key", keys))
            return False
        target.values, target.rev = merged, target.rev + 1
        target.last_action, target.last_row = item.action_id, item.row
        target.key = new_key or target.key
        batch.learn([target])
        return True

    # ------------------------------------------------------------------ reads

    def get(self, account_id: str, entity_type: str, entity_id: str) -> dict[str, Any] | None:
        doc = self._entities.find_one(
            {"_id": exactly(entity_id), "account_id": exactly(account_id), "entity_type": exactly(entity_type)},
            {"values": 1},
        )
        return None if doc is None else dict(doc["values"])

    def count(self, account_id: str, entity_type: str) -> int:
        return self._entities.count_documents({"account_id": exactly(account_id), "entity_type": exactly(entity_type)})

    # ------------------------------------------------------------------ migration

    def needs_owner_migration(self) -> bool:
        return self._legacy_index is not None

    def assign_owners(self, owner_of: Callable[[str, str | None], str]) -> int:
        """Give every entity of a collection written before entities had accounts the
        account ``owner_of(entity_id, last_action)`` names, then swap the unique index.
        Safe to run again after an interruption (owners are set idempotently)."""
        if self._legacy_index is None:
            return 0
        moved = 0
        page: list[UpdateOne] = []
        for doc in self._entities.find({}, {"_id": 1, "last_action": 1}):
            page.append(
                UpdateOne({"_id": doc["_id"]}, {"$set": {"account_id": owner_of(doc["_id"], doc.get("last_action"))}})
            )
            if len(page) == 1000:
                moved += self._write_owners(page)
                page = []
        moved += self._write_owners(page)
        self._entities.drop_index(self._legacy_index)
        self._create_index()
        self._legacy_index = None
        return moved

    def _write_owners(self, page: list[UpdateOne]) -> int:
        if page:
            self._entities.bulk_write(page, ordered=False)
        return len(page)

    def close(self) -> None:
        self._client.close()
