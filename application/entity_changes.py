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

from application.ports.entities import EntityChange, EntityRef, UpdateResult

# field -> [before, after]; before is None for a field that had no value.
Changes = dict[str, list[Any]]


@dataclass(frozen=True, slots=True)
class RecordedChange:
    """What one input row did to one entity: kept until its outcome events are stored."""

    action_id: str
    row: int
    version: int  # the entity's version after this change
    changes: Changes

    def as_json(self) -> dict[str, Any]:
        return {"action_id": self.action_id, "row": self.row, "version": self.version, "changes": self.changes}

    @classmethod
    def of_json(cls, data: dict[str, Any]) -> RecordedChange:
        return cls(data["action_id"], int(data["row"]), int(data["version"]), data["changes"])


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


@dataclass(frozen=True, slots=True)
class UpdateDecision:
    """What the store must do for one ``EntityChange`` (``kind``):

    - ``not_found``, ``duplicate`` (``holder`` has the new key), ``unchanged``: nothing;
    - ``already_applied``: nothing, report ``change`` (this row's own, found again);
    - ``write``: store ``values`` (and ``new_key``) at ``change.version``, with ``change``
      as the entity's last change; first journal ``journal`` (the unconfirmed change
      it replaces), if any.
    """

    kind: Literal["not_found", "duplicate", "unchanged", "already_applied", "write"]
    target: StoredEntity | None = None
    holder: StoredEntity | None = None
    values: dict[str, Any] | None = None
    new_key: str | None = None
    change: RecordedChange | None = None
    journal: RecordedChange | None = None


def changes_between(stored: dict[str, Any], given: dict[str, Any]) -> Changes:
    """The fields whose value ``given`` actually changes, with before and after."""
    return {name: [stored.get(name), value] for name, value in given.items() if stored.get(name) != value}


def own_change(target: StoredEntity, item: EntityChange, journaled: RecordedChange | None) -> RecordedChange | None:
    """This row's change, if it was stored before (a chunk run again)."""
    last = target.last_change
    if last is not None and (last.action_id, last.row) == (item.action_id, item.row):
        return last
    return journaled


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
    found = own_change(target, item, journaled)
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
        journal=target.last_change,
    )


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
    change = decision.change
    assert change is not None
    if decision.kind == "write":
        return UpdateResult("updated", target.id, changes=change.changes, version=change.version)
    return UpdateResult("already_applied", target.id, changes=change.changes, version=change.version)
