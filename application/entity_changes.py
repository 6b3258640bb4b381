"""The update decision: one pure function that every entity store calls.

A store loads what it needs under its own atomicity (a write lock, a compare-and-set),
asks ``decide_update`` what to do, and stores what it is told: the rule lives here
once (the eventsourcing ``searchablecontent`` example: the application computes, the
recorder stores), so a third store never copies it.

Exact before values, even when a chunk is run again after a crash between the entity
write and the saving of its outcome events: every write leaves the change it made on
the entity (``last_change``) until the worker confirms that the outcome events are
stored. A later writer that meets an unconfirmed change first copies it to the store's
journal, so the first writer, run again, finds its own change (``already_applied``)
instead of applying it over somebody else's. Entity versions order every entity's
changes exactly, whichever order their events reach the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from application.ports.entities import EntityChange, EntityDelete, EntityRef, EntityRevert, UpdateResult

# field -> [before, after]; before is None for a field that had no value.
Changes = dict[str, list[Any]]


# RecordedChange and UpdateDecision are not frozen: one of each is made per updated
# record, and a frozen dataclass's __init__ (one object.__setattr__ per field) costs
# several times a plain one's. Treat them as values all the same.
@dataclass(slots=True)
class RecordedChange:
    """What one input row did to one entity: kept until its outcome events are stored."""

    action_id: str
    row: int
    version: int  # the entity's version after this change
    changes: Changes
    # A deletion's: the entity it removed (found again in the journal once it is gone).
    entity_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        found = {"action_id": self.action_id, "row": self.row, "version": self.version, "changes": self.changes}
        return found if self.entity_id is None else {**found, "entity_id": self.entity_id}

    @classmethod
    def of_json(cls, data: dict[str, Any]) -> RecordedChange:
        return cls(data["action_id"], int(data["row"]), int(data["version"]), data["changes"], data.get("entity_id"))


@dataclass(slots=True)
class StoredEntity:
    """An entity as a store loaded it for a decision."""

    id: str
    key: str
    values: dict[str, Any]
    version: int
    last_action: str | None
    last_row: int | None
    last_change: RecordedChange | None

    def ref(self) -> EntityRef:
        return EntityRef(self.id, self.last_action, self.last_row)


@dataclass(slots=True)
class UpdateDecision:
    """What the store must do for one ``EntityChange`` (``kind``):

    - ``not_found``, ``duplicate`` (``holder`` has the new key), ``unchanged``: nothing;
    - ``already_applied``: nothing, report ``change`` (this row's own, found again);
    - ``write``: store ``values`` (and ``new_key``) at ``change.version``, with ``change``
      as the entity's last change;
    - ``remove``: remove the entity (``change`` says what it held);
    - ``create``: store ``target`` (a revert's recreation of a deleted entity) with
      ``change`` as its last change;
    - ``changed_since``: nothing (a revert whose entity was changed by someone else);
    and before a write or removal, put ``journal`` in the store's journal (the
    unconfirmed change a write replaces; a removal's own change, since the entity that
    would carry it is gone).
    """

    kind: Literal[
        "not_found", "duplicate", "unchanged", "already_applied", "write", "remove", "create", "changed_since"
    ]
    target: StoredEntity | None = None
    holder: StoredEntity | None = None
    values: dict[str, Any] | None = None
    new_key: str | None = None
    change: RecordedChange | None = None
    journal: tuple[RecordedChange, ...] = ()


def changes_between(stored: dict[str, Any], given: dict[str, Any]) -> Changes:
    """The fields whose value ``given`` actually changes, with before and after."""
    return {name: [stored.get(name), value] for name, value in given.items() if stored.get(name) != value}


def own_change(
    target: StoredEntity | None, action_id: str, row: int, journaled: RecordedChange | None
) -> RecordedChange | None:
    """This row's change, if it was stored before (a chunk run again)."""
    last = target.last_change if target is not None else None
    if last is not None and (last.action_id, last.row) == (action_id, row):
        return last
    return journaled


def _kept(target: StoredEntity) -> tuple[RecordedChange, ...]:
    return () if target.last_change is None else (target.last_change,)


def decide_update(
    item: EntityChange,
    target: StoredEntity | None,
    key_holder: StoredEntity | None,
    journaled: RecordedChange | None,
) -> UpdateDecision:
    """Decide one change. ``target`` is the entity the item names (by id or key),
    ``key_holder`` the entity holding the item's new unique key (if it changes the
    key), ``journaled`` this row's change found in the store's journal."""
    if target is None:
        return UpdateDecision("not_found")
    found = own_change(target, item.action_id, item.row, journaled)
    if found is not None:
        return UpdateDecision("already_applied", target, change=found)
    new_key = item.new_unique_key if item.new_unique_key != target.key else None
    if new_key and key_holder is not None and key_holder.id != target.id:
        return UpdateDecision("duplicate", target, holder=key_holder)
    changes = changes_between(target.values, item.values)
    if not changes:
        return UpdateDecision("unchanged", target)
    change = RecordedChange(item.action_id, item.row, target.version + 1, changes)
    return UpdateDecision(
        "write",
        target,
        values={**target.values, **item.values},
        new_key=new_key,
        change=change,
        journal=_kept(target),
    )


def decide_delete(item: EntityDelete, target: StoredEntity | None, journaled: RecordedChange | None) -> UpdateDecision:
    """Decide one delete: remove the entity, its values kept in the change (every field
    -> [value, None]) and in the journal until the outcome events hold them. A row whose
    delete is journaled was done (or, in a store without transactions, half done: the
    entity is still there and is removed now)."""
    found = own_change(target, item.action_id, item.row, journaled)
    if target is None:
        if found is None or found.entity_id is None:
            return UpdateDecision("not_found")
        return UpdateDecision("already_applied", _gone_entity(found.entity_id, item.action_id, item.row), change=found)
    held = {name: [value, None] for name, value in target.values.items()}
    change = found or RecordedChange(item.action_id, item.row, target.version + 1, held, target.id)
    return UpdateDecision("remove", target, change=change, journal=(*_kept(target), change))


def decide_revert(
    item: EntityRevert,
    target: StoredEntity | None,
    journaled: RecordedChange | None,
    key_holder: StoredEntity | None = None,
) -> UpdateDecision:
    """Decide one revert: undo what a row of an earlier action did, only if the entity
    still holds what that row left (anything else changed it since: left alone).
    ``key_holder``: for a recreation, the entity that holds its unique key now."""
    found = own_change(target, item.action_id, item.row, journaled)
    if found is not None and (target is None or target.version >= found.version):
        return UpdateDecision("already_applied", target or _gone(item), change=found)
    if item.kind == "recreate":
        return _recreation(item, target, key_holder)
    if target is None:
        return UpdateDecision("not_found")
    if item.kind == "remove":
        return _removal(item, target, found)
    if any(target.values.get(name) != after for name, (_, after) in item.changes.items()):
        return UpdateDecision("changed_since", target)
    values = dict(target.values)
    for name, (before, _) in item.changes.items():
        if before is None:
            values.pop(name, None)
        else:
            values[name] = before
    changes = {name: [after, before] for name, (before, after) in item.changes.items()}
    change = RecordedChange(item.action_id, item.row, target.version + 1, changes)
    return UpdateDecision("write", target, values=values, change=change, journal=_kept(target))


def _removal(item: EntityRevert, target: StoredEntity, found: RecordedChange | None) -> UpdateDecision:
    """Remove an inserted entity that holds exactly what the insert set. ``found``: this
    row's removal journaled but not done (a store without transactions journals first)."""
    inserted = {name: after for name, (_, after) in item.changes.items()}
    if target.values != inserted:
        return UpdateDecision("changed_since", target)
    held = {name: [value, None] for name, value in target.values.items()}
    change = found or RecordedChange(item.action_id, item.row, target.version + 1, held)
    return UpdateDecision("remove", target, change=change, journal=(*_kept(target), change))


def _recreation(item: EntityRevert, target: StoredEntity | None, key_holder: StoredEntity | None) -> UpdateDecision:
    """Bring a deleted entity back as it was, unless its id or its key is taken again."""
    holder = target or key_holder
    if holder is not None or not item.key:
        return UpdateDecision("changed_since", holder or _gone(item))
    values = {name: before for name, (before, _) in item.changes.items() if before is not None}
    version = (item.version or 1) + 1
    change = RecordedChange(item.action_id, item.row, version, {name: [None, v] for name, v in values.items()})
    recreated = StoredEntity(item.entity_id, item.key, values, version, item.action_id, item.row, change)
    return UpdateDecision("create", recreated, values=values, change=change)


def _gone(item: EntityRevert) -> StoredEntity:
    """The entity a revert removed, already gone when the revert is run again."""
    return _gone_entity(item.entity_id, item.action_id, item.row)


def _gone_entity(entity_id: str, action_id: str, row: int) -> StoredEntity:
    return StoredEntity(entity_id, "", {}, 0, action_id, row, None)


def result_of(decision: UpdateDecision) -> UpdateResult:
    """The port's answer to a decision (every store answers the same)."""
    target = decision.target
    if decision.kind == "not_found" or target is None:
        return UpdateResult("not_found")
    if decision.kind == "duplicate":
        assert decision.holder is not None
        return UpdateResult("duplicate", target.id, decision.holder.ref())
    if decision.kind == "unchanged":
        return UpdateResult("unchanged", target.id, version=target.version)
    if decision.kind == "changed_since":
        return UpdateResult("changed_since", target.id, target.ref())
    change = decision.change
    assert change is not None
    if decision.kind == "write":
        return UpdateResult("updated", target.id, changes=change.changes, version=change.version)
    if decision.kind == "remove":
        return UpdateResult("removed", target.id, changes=change.changes, version=change.version)
    if decision.kind == "create":
        return UpdateResult("recreated", target.id, changes=change.changes, version=change.version)
    return UpdateResult("already_applied", target.id, changes=change.changes, version=change.version)
