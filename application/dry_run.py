"""A dry run: every record validated and decided as it would be, nothing written.

``DryRunEntities`` stands in for the entity store of a dry-run action's chunks: it
reads what a decision needs from the real store and decides with the same pure
functions (``application.entity_changes``) and the same in-batch rules the stores
apply (a key taken by an earlier row of the batch, an entity changed by an earlier
row), keeping the batch's would-be writes in memory only. Across chunks the input's
key index has already marked a target named twice (``duplicate_of_row``), so each
chunk can be decided on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from application.entity_changes import StoredEntity, UpdateDecision, decide_delete, decide_update, result_of
from application.ports.entities import (
    EntityChange,
    EntityDelete,
    EntityRef,
    EntityRevert,
    EntityRow,
    EntityStore,
    InsertResult,
    NewEntity,
    StoredChange,
    UpdateResult,
)


class DryRunError(RuntimeError):
    """Something a dry run never does (a revert is never a dry run)."""


class _Overlay:
    """The store as one batch would leave it: loaded entities, changed in memory."""

    def __init__(self, loaded: list[StoredEntity]) -> None:
        self.by_id = {e.id: e for e in loaded}
        self.by_key = {e.key: e for e in loaded}

    def find(self, match: str, value: str) -> StoredEntity | None:
        return self.by_id.get(value) if match == "id" else self.by_key.get(value)

    def apply(self, decision: UpdateDecision) -> UpdateResult:
        target = decision.target
        if decision.kind == "write":
            assert target is not None and decision.values is not None and decision.change is not None
            changed = replace(target, values=decision.values, version=decision.change.version)
            if decision.new_key:
                self.by_key.pop(target.key, None)
                changed.key = decision.new_key
            self.by_id[changed.id] = self.by_key[changed.key] = changed
        elif decision.kind == "remove":
            assert target is not None
            self.by_id.pop(target.id, None)
            self.by_key.pop(target.key, None)
        return result_of(decision)


class DryRunEntities:
    """An ``EntityStore`` whose writes are decided and answered, never stored."""

    def __init__(self, store: EntityStore) -> None:
        self.store = store

    def insert_many(self, account_id: str, entity_type: str, items: Sequence[NewEntity]) -> list[InsertResult]:
        loaded = self.store.load(account_id, entity_type, [], [i.unique_key for i in items])
        holders = {e.key: e.ref() for e in loaded}
        results = []
        for item in items:
            holder = holders.get(item.unique_key)
            results.append(InsertResult(False, holder) if holder else InsertResult(True))
            holders.setdefault(item.unique_key, EntityRef(item.entity_id, item.action_id, item.row))
        return results

    def update_many(self, account_id: str, entity_type: str, items: Sequence[EntityChange]) -> list[UpdateResult]:
        ids = [i.match_value for i in items if i.match == "id"]
        keys = [i.match_value for i in items if i.match == "unique"] + [i.new_unique_key or "" for i in items]
        batch = _Overlay(self.store.load(account_id, entity_type, ids, [k for k in keys if k]))
        results = []
        for item in items:
            holder = batch.by_key.get(item.new_unique_key) if item.new_unique_key else None
            results.append(batch.apply(decide_update(item, batch.find(item.match, item.match_value), holder, None)))
        return results

    def delete_many(self, account_id: str, entity_type: str, items: Sequence[EntityDelete]) -> list[UpdateResult]:
        ids = [i.match_value for i in items if i.match == "id"]
        keys = [i.match_value for i in items if i.match == "unique"]
        batch = _Overlay(self.store.load(account_id, entity_type, ids, keys))
        return [batch.apply(decide_delete(item, batch.find(item.match, item.match_value), None)) for item in items]

    def revert_many(self, account_id: str, entity_type: str, items: Sequence[EntityRevert]) -> list[UpdateResult]:
        raise DryRunError("a revert is never a dry run")

    def confirm(self, account_id: str, entity_type: str, stored: Sequence[StoredChange]) -> None:
        """Nothing was written, so nothing is kept to forget."""

    def forget_changes(self, account_id: str, action_id: str) -> None:
        """Nothing was written, so nothing is kept to forget."""

    def load(self, account_id: str, entity_type: str, ids: Sequence[str], keys: Sequence[str]) -> list[StoredEntity]:
        return self.store.load(account_id, entity_type, ids, keys)

    def get(self, account_id: str, entity_type: str, entity_id: str) -> dict[str, Any] | None:
        return self.store.get(account_id, entity_type, entity_id)

    def id_of(self, account_id: str, entity_type: str, unique_key: str) -> str | None:
        return self.store.id_of(account_id, entity_type, unique_key)

    def ids_of(self, account_id: str, entity_type: str, unique_keys: Sequence[str]) -> dict[str, str]:
        return self.store.ids_of(account_id, entity_type, unique_keys)

    def version(self, account_id: str, entity_type: str, entity_id: str) -> int | None:
        return self.store.version(account_id, entity_type, entity_id)

    def count(self, account_id: str, entity_type: str) -> int:
        return self.store.count(account_id, entity_type)

    def entities_page(self, after_id: str | None, limit: int) -> list[EntityRow]:
        return self.store.entities_page(after_id, limit)

    def needs_owner_migration(self) -> bool:
        return self.store.needs_owner_migration()

    def assign_owners(self, owner_of: Callable[[str, str | None], str]) -> int:
        raise DryRunError("a dry run migrates nothing")

    def close(self) -> None:
        """The real store is closed by its owner."""
