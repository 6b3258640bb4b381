"""Entity store on MongoDB: one collection, a unique index on (account_id, entity_type,
unique_key); every filter names the account, so one account never sees another's.

The unique index, not a read, decides who gets a key: inserts go in one unordered
``insert_many`` and the refused ones (duplicate-key errors) are answered with the
entity that holds the key. Updates are read, decided in order, and written with a
compare-and-set on the entity's version and last change, so a concurrent writer is
never overwritten: a missed compare-and-set re-reads and decides again. A key change
that meets a key taken meanwhile is refused by the index. Values are stored after a
JSON round trip, so ``get`` returns what SQLite returns. What to do with each change
is decided by ``application.entity_changes.decide_update``, as in every store; this
module only loads and writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from pymongo import ASCENDING, UpdateOne
from pymongo.errors import DuplicateKeyError

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
from infrastructure.mongo.client import Document, closed_on_error, connect, exactly, insert_ignoring_duplicates

# A compare-and-set that keeps losing means something else is rewriting the entity
# in a loop; give up loudly rather than spin.
_MAX_ATTEMPTS = 100


class EntityIdConflictError(RuntimeError):
    """An insert's id is taken by an entity that no longer holds the insert's key."""


def _as_json(values: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(orjson.dumps(values))
    return loaded


def _stored(doc: Document) -> StoredEntity:
    """An entity document as the decision reads it; version = ``rev`` + 1 (``rev`` was
    0 at insert before versions were named, and counts writes since)."""
    last_change = doc.get("last_change")
    return StoredEntity(
        doc["_id"],
        doc["unique_key"],
        doc["values"],
        doc.get("rev", 0) + 1,
        doc.get("last_action"),
        doc.get("last_row"),
        RecordedChange.of_json(last_change) if last_change else None,
    )


def _change_key(change: RecordedChange | None) -> str:
    """The compare-and-set token of an entity's last change ("" for none): a confirmation
    clears the change without a new version, and a writer must notice that too."""
    return "" if change is None else f"{change.action_id}:{change.row}"


def _journal_id(account_id: str, action_id: str, row: int) -> str:
    return f"{account_id}\x00{action_id}\x00{row}"


class _Batch:
    """The entities one ``update_many`` has seen, by id and by key, kept current as it
    writes (later items of the batch see the changes of earlier ones)."""

    def __init__(self, account_id: str, entity_type: str, now: str) -> None:
        self.account_id, self.entity_type, self.now = account_id, entity_type, now
        self.by_id: dict[str, StoredEntity] = {}
        self.by_key: dict[str, StoredEntity] = {}

    def find(self, match: str, value: str) -> StoredEntity | None:
        return self.by_id.get(value) if match == "id" else self.by_key.get(value)

    def forget(self, stale: StoredEntity) -> None:
        self.by_id.pop(stale.id, None)
        if self.by_key.get(stale.key) is stale:
            del self.by_key[stale.key]

    def learn(self, fresh: Iterable[StoredEntity]) -> None:
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
        self._journal = self._client[database]["entity_changes"]
        with closed_on_error(self._client):
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
            "last_change_key": "",
        }

    def _holders(self, account_id: str, entity_type: str, keys: Iterable[str]) -> dict[str, StoredEntity]:
        found = self._load(account_id, entity_type, "unique_key", list(keys))
        return {s.key: s for s in found}

    def _load(self, account_id: str, entity_type: str, field: str, values: list[str]) -> list[StoredEntity]:
        if not values:
            return []
        cursor = self._entities.find(
            {
                "account_id": exactly(account_id),
                "entity_type": exactly(entity_type),
                field: {"$in": sorted(set(values))},
            }
        )
        return [_stored(doc) for doc in cursor]

    # ------------------------------------------------------------------ updates

    def update_many(self, account_id: str, entity_type: str, items: Sequence[EntityChange]) -> list[UpdateResult]:
        ids = [i.match_value for i in items if i.match == "id"]
        keys = [i.match_value for i in items if i.match == "unique"]
        keys += [i.new_unique_key for i in items if i.new_unique_key]
        batch = _Batch(account_id, entity_type, datetime.now(UTC).isoformat())
        batch.learn(self._load(account_id, entity_type, "_id", ids))
        batch.learn(self._load(account_id, entity_type, "unique_key", keys))
        journaled = self._journaled(account_id, items)
        return [self._update(batch, item, journaled.get((item.action_id, item.row))) for item in items]

    def revert_many(self, account_id: str, entity_type: str, items: Sequence[EntityRevert]) -> list[UpdateResult]:
        batch = _Batch(account_id, entity_type, datetime.now(UTC).isoformat())
        batch.learn(self._load(account_id, entity_type, "_id", [i.entity_id for i in items]))
        batch.learn(self._load(account_id, entity_type, "unique_key", [i.key for i in items if i.key]))
        journaled = self._journaled(account_id, items)
        return [self._revert(batch, item, journaled.get((item.action_id, item.row))) for item in items]

    def _revert(self, batch: _Batch, item: EntityRevert, journaled: RecordedChange | None) -> UpdateResult:
        for _ in range(_MAX_ATTEMPTS):
            holder = batch.by_key.get(item.key) if item.key else None
            decision = decide_revert(item, batch.by_id.get(item.entity_id), journaled, holder)
            if decision.kind == "write":
                done = self._write(batch, decision, None)
            elif decision.kind == "remove":
                done = self._remove(batch, decision)
            elif decision.kind == "create":
                done = self._create(batch, decision)
            else:
                done = True
            if done:
                return result_of(decision)
        raise RuntimeError(f"{batch.entity_type} {item.entity_id}: gave up after {_MAX_ATTEMPTS} tries")

    def delete_many(self, account_id: str, entity_type: str, items: Sequence[EntityDelete]) -> list[UpdateResult]:
        batch = _Batch(account_id, entity_type, datetime.now(UTC).isoformat())
        batch.learn(self._load(account_id, entity_type, "_id", [i.match_value for i in items if i.match == "id"]))
        keys = [i.match_value for i in items if i.match == "unique"]
        batch.learn(self._load(account_id, entity_type, "unique_key", keys))
        journaled = self._journaled(account_id, items)
        return [self._delete(batch, item, journaled.get((item.action_id, item.row))) for item in items]

    def _delete(self, batch: _Batch, item: EntityDelete, journaled: RecordedChange | None) -> UpdateResult:
        for _ in range(_MAX_ATTEMPTS):
            decision = decide_delete(item, batch.find(item.match, item.match_value), journaled)
            if decision.kind != "remove":
                return result_of(decision)
            if self._remove(batch, decision):
                return result_of(decision)
            if item.match == "unique":  # whatever answers to the key now
                batch.learn(self._load(batch.account_id, batch.entity_type, "unique_key", [item.match_value]))
        raise RuntimeError(f"{batch.entity_type} {item.match_value}: gave up after {_MAX_ATTEMPTS} tries")

    def _create(self, batch: _Batch, decision: UpdateDecision) -> bool:
        """Insert a recreated entity; if its key (or id) was taken meanwhile, learn by
        whom and decide again."""
        entity, change = decision.target, decision.change
        assert entity is not None and change is not None
        document = {
            "_id": entity.id,
            "account_id": batch.account_id,
            "entity_type": batch.entity_type,
            "unique_key": entity.key,
            "values": _as_json(entity.values),
            "last_action": change.action_id,
            "last_row": change.row,
            "created_at": batch.now,
            "updated_at": batch.now,
            "rev": change.version - 1,
            "last_change": change.as_json(),
            "last_change_key": _change_key(change),
        }
        try:
            self._entities.insert_one(document)
        except DuplicateKeyError:
            batch.learn(self._load(batch.account_id, batch.entity_type, "_id", [entity.id]))
            batch.learn(self._load(batch.account_id, batch.entity_type, "unique_key", [entity.key]))
            return False
        batch.learn([entity])
        return True

    def _remove(self, batch: _Batch, decision: UpdateDecision) -> bool:
        """Journal the removal first (no transaction spans two collections: a crash
        between the two leaves a journaled removal not done, which the decision
        recognises), then remove the entity if it is as it was read."""
        target = decision.target
        assert target is not None
        for kept in decision.journal:
            self._keep_in_journal(batch.account_id, target.id, kept)
        removed = self._entities.delete_one(self._unchanged(target))
        batch.forget(target)
        if removed.deleted_count == 0:
            batch.learn(self._load(batch.account_id, batch.entity_type, "_id", [target.id]))
            return False
        return True

    @staticmethod
    def _unchanged(target: StoredEntity) -> Document:
        """The compare-and-set filter: the entity still as ``target`` read it."""
        return {
            "_id": exactly(target.id),
            "rev": target.version - 1,
            "last_change_key": _change_key(target.last_change),
        }

    def _journaled(
        self, account_id: str, items: Sequence[EntityChange | EntityRevert | EntityDelete]
    ) -> dict[tuple[str, int], RecordedChange]:
        ids = sorted({_journal_id(account_id, i.action_id, i.row) for i in items})
        if not ids:
            return {}
        changes = [RecordedChange.of_json(doc["change"]) for doc in self._journal.find({"_id": {"$in": ids}})]
        return {(c.action_id, c.row): c for c in changes}

    def _update(self, batch: _Batch, item: EntityChange, journaled: RecordedChange | None) -> UpdateResult:
        for _ in range(_MAX_ATTEMPTS):
            target = batch.find(item.match, item.match_value)
            holder = batch.by_key.get(item.new_unique_key) if item.new_unique_key else None
            decision = decide_update(item, target, holder, journaled)
            match_key = item.match_value if item.match == "unique" else None
            if decision.kind != "write" or self._write(batch, decision, match_key):
                return result_of(decision)
        raise RuntimeError(f"{batch.entity_type} {item.match_value}: gave up after {_MAX_ATTEMPTS} tries")

    def _write(self, batch: _Batch, decision: UpdateDecision, match_key: str | None) -> bool:
        """Compare-and-set one decided change; on a lost race learn what was stale and say
        so (``match_key``: the unique key the change was matched by, read again too)."""
        target, change, values = decision.target, decision.change, decision.values
        assert target is not None and change is not None and values is not None
        for kept in decision.journal:
            self._keep_in_journal(batch.account_id, target.id, kept)
        fields: Document = {
            "values": _as_json(values),
            "last_action": change.action_id,
            "last_row": change.row,
            "updated_at": batch.now,
            "rev": change.version - 1,
            "last_change": change.as_json(),
            "last_change_key": _change_key(change),
        }
        if decision.new_key:
            fields["unique_key"] = decision.new_key
        try:
            result = self._entities.update_one(self._unchanged(target), {"$set": fields})
        except DuplicateKeyError:
            # The new key was taken after we looked: learn who holds it and decide again.
            batch.learn(self._load(batch.account_id, batch.entity_type, "unique_key", [decision.new_key or ""]))
            return False
        batch.forget(target)
        if result.matched_count == 0:
            # Someone changed the entity since we read it: read it (and whatever now
            # answers to the key we matched on) again.
            keys = [match_key] if match_key else []
            batch.learn(self._load(batch.account_id, batch.entity_type, "_id", [target.id]))
            batch.learn(self._load(batch.account_id, batch.entity_type, "unique_key", keys))
            return False
        target.values, target.version, target.last_change = fields["values"], change.version, change
        target.last_action, target.last_row = change.action_id, change.row
        target.key = decision.new_key or target.key
        batch.learn([target])
        return True

    def _keep_in_journal(self, account_id: str, entity_id: str, change: RecordedChange) -> None:
        """Before an unconfirmed change is overwritten: its row may be run again."""
        document = {
            "_id": _journal_id(account_id, change.action_id, change.row),
            "account_id": account_id,
            "action_id": change.action_id,
            "entity_id": entity_id,
            "change": change.as_json(),
        }
        insert_ignoring_duplicates(self._journal, [document])

    # ------------------------------------------------------------------ confirmations

    def confirm(self, account_id: str, entity_type: str, stored: Sequence[StoredChange]) -> None:
        if not stored:
            return
        clear = {"$set": {"last_change": None, "last_change_key": ""}}
        self._entities.bulk_write(
            [UpdateOne({"_id": s.entity_id, "last_change_key": f"{s.action_id}:{s.row}"}, clear) for s in stored],
            ordered=False,
        )
        ids = [_journal_id(account_id, s.action_id, s.row) for s in stored]
        self._journal.delete_many({"_id": {"$in": ids}})

    def forget_changes(self, account_id: str, action_id: str) -> None:
        self._journal.delete_many({"account_id": exactly(account_id), "action_id": exactly(action_id)})

    # ------------------------------------------------------------------ reads

    def get(self, account_id: str, entity_type: str, entity_id: str) -> dict[str, Any] | None:
        doc = self._find_one(account_id, entity_type, entity_id, "values")
        return None if doc is None else dict(doc["values"])

    def load(self, account_id: str, entity_type: str, ids: Sequence[str], keys: Sequence[str]) -> list[StoredEntity]:
        by_id = self._load(account_id, entity_type, "_id", list(ids))
        return by_id + self._load(account_id, entity_type, "unique_key", list(keys))

    def id_of(self, account_id: str, entity_type: str, unique_key: str) -> str | None:
        found = self._load(account_id, entity_type, "unique_key", [unique_key])
        return found[0].id if found else None

    def ids_of(self, account_id: str, entity_type: str, unique_keys: Sequence[str]) -> dict[str, str]:
        if not unique_keys:
            return {}
        cursor = self._entities.find(
            {
                "account_id": exactly(account_id),
                "entity_type": exactly(entity_type),
                "unique_key": {"$in": sorted(set(unique_keys))},
            },
            {"unique_key": 1},
        )
        return {str(doc["unique_key"]): str(doc["_id"]) for doc in cursor}

    def version(self, account_id: str, entity_type: str, entity_id: str) -> int | None:
        doc = self._find_one(account_id, entity_type, entity_id, "rev")
        return None if doc is None else int(doc.get("rev", 0)) + 1

    def _find_one(self, account_id: str, entity_type: str, entity_id: str, field: str) -> Document | None:
        return self._entities.find_one(
            {"_id": exactly(entity_id), "account_id": exactly(account_id), "entity_type": exactly(entity_type)},
            {field: 1},
        )

    def entities_page(self, after_id: str | None, limit: int) -> list[EntityRow]:
        query = {"_id": {"$gt": after_id}} if after_id else {}
        cursor = self._entities.find(query).sort("_id", ASCENDING).limit(limit)
        return [EntityRow(d["_id"], d["account_id"], d["entity_type"], d["unique_key"], d["values"]) for d in cursor]

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
            owner = owner_of(doc["_id"], doc.get("last_action"))
            page.append(UpdateOne({"_id": doc["_id"]}, {"$set": {"account_id": owner, "last_change_key": ""}}))
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
