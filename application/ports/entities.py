"""Entities: what the chunk use case needs from an entity store.

Each port has one contract test suite (``tests/contract``) run against every adapter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:  # the decision's view of an entity (application.entity_changes imports this module)
    from application.entity_changes import StoredEntity


@dataclass(frozen=True, slots=True)
class EntityRef:
    """An existing entity, with the action and row that last wrote it (if any)."""

    entity_id: str
    action_id: str | None
    row: int | None


# Not frozen: one is made per input record, and a frozen dataclass's __init__ (one
# object.__setattr__ per field) took several times as long (measured: 1.18 -> 0.20 us for
# twelve fields). Treat it as a value all the same.
@dataclass(slots=True)
class NewEntity:
    entity_id: str
    unique_key: str
    values: dict[str, Any]
    action_id: str
    row: int


@dataclass(slots=True)  # not frozen: as NewEntity
class InsertResult:
    inserted: bool
    # When not inserted: the entity that already holds the unique key.
    existing: EntityRef | None = None


@dataclass(slots=True)  # not frozen: as NewEntity
class EntityChange:
    """Change the fields in ``values`` of the entity matched by id or by unique key."""

    match: Literal["id", "unique"]
    match_value: str
    values: dict[str, Any]
    new_unique_key: str | None
    action_id: str
    row: int


@dataclass(frozen=True, slots=True)
class EntityDelete:
    """Remove the entity matched by id or by unique key (its values go into the outcome)."""

    match: Literal["id", "unique"]
    match_value: str
    action_id: str
    row: int


@dataclass(frozen=True, slots=True)
class EntityRow:
    """An entity as stored, for a check of the whole store against the events."""

    entity_id: str
    account_id: str
    entity_type: str
    key: str
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EntityRevert:
    """Undo what a row of an earlier action did to an entity, if nothing changed it since.

    ``restore``: the fields it changed, as field -> [before, after]: each must still hold
    ``after``, and gets ``before`` back (None: the field had no value). ``remove``: the
    entity it inserted, still at version 1 and holding exactly ``values``, is removed.
    ``recreate``: the entity it deleted (``changes``: field -> [value, None]) comes back
    with its id, its values and its unique ``key``, at the version after the deletion
    (``version``), unless another entity took the key meanwhile.
    """

    kind: Literal["restore", "remove", "recreate"]
    entity_id: str
    changes: dict[str, list[Any]]
    action_id: str  # the revert's
    row: int
    version: int | None = None  # the entity's version after the reverted change
    key: str | None = None  # recreate: the unique key it had


UpdateStatus = Literal[
    "updated", "unchanged", "not_found", "duplicate", "already_applied", "removed", "recreated", "changed_since"
]


@dataclass(slots=True)  # not frozen: as NewEntity
class UpdateResult:
    status: UpdateStatus
    entity_id: str | None = None
    # For "duplicate": the other entity that holds the new unique key.
    existing: EntityRef | None = None
    # For "updated" and "already_applied": field -> [before, after] of the fields this
    # row changed, and the entity's version after the change.
    changes: dict[str, list[Any]] | None = None
    version: int | None = None


@dataclass(slots=True)  # not frozen: as NewEntity
class StoredChange:
    """A row's change that its outcome events now hold: the store may forget it."""

    entity_id: str
    action_id: str
    row: int


class EntityStore(Protocol):
    """Entities of many accounts, one unique key per (account, entity type), enforced by
    the store (not by a read).

    Every method is scoped to one account: an entity of another account is never
    found, matched, updated or reported as a duplicate (two accounts may each hold the
    same unique value). Batches are applied in order; each item is atomic on its own,
    so concurrent workers can never both take the same unique key.
    """

    def insert_many(self, account_id: str, entity_type: str, items: Sequence[NewEntity]) -> list[InsertResult]: ...

    def update_many(self, account_id: str, entity_type: str, items: Sequence[EntityChange]) -> list[UpdateResult]: ...

    def revert_many(self, account_id: str, entity_type: str, items: Sequence[EntityRevert]) -> list[UpdateResult]:
        """Apply each revert whose entity is unchanged since ("updated": restored,
        "removed", "recreated"); otherwise "changed_since" (``existing``: who changed it
        last, or holds its key now) or "not_found"; a revert already applied by this row
        is "already_applied"."""
        ...

    def delete_many(self, account_id: str, entity_type: str, items: Sequence[EntityDelete]) -> list[UpdateResult]:
        """Remove each matched entity ("removed", ``changes``: every value it held ->
        [value, None], ``version``: the one after its last); its unique key is free from
        then on. "not_found" if there is none; "already_applied" for a row whose delete
        was done before (a chunk run again)."""
        ...

    def confirm(self, account_id: str, entity_type: str, stored: Sequence[StoredChange]) -> None:
        """The outcome events of these changes are stored: their before values need not
        be kept any longer (see application.entity_changes)."""
        ...

    def forget_changes(self, account_id: str, action_id: str) -> None:
        """Drop whatever the store still keeps of a finished action's changes."""
        ...

    def get(self, account_id: str, entity_type: str, entity_id: str) -> dict[str, Any] | None: ...

    def load(self, account_id: str, entity_type: str, ids: Sequence[str], keys: Sequence[str]) -> list[StoredEntity]:
        """The account's entities with these ids or unique keys, as a decision reads
        them (a dry run decides on them without writing)."""
        ...

    def id_of(self, account_id: str, entity_type: str, unique_key: str) -> str | None:
        """The id of the account's entity that holds ``unique_key`` now, if any."""
        ...

    def ids_of(self, account_id: str, entity_type: str, unique_keys: Sequence[str]) -> dict[str, str]:
        """Unique key -> id of the account's entities that hold these keys now (a key
        nobody holds is absent): what linking needs, without loading the entities."""
        ...

    def version(self, account_id: str, entity_type: str, entity_id: str) -> int | None:
        """The entity's version: 1 when inserted, one more per change of its values."""
        ...

    def count(self, account_id: str, entity_type: str) -> int: ...

    def entities_page(self, after_id: str | None, limit: int) -> list[EntityRow]:
        """Every entity of every account, in id order, a page at a time (verify)."""
        ...

    def needs_owner_migration(self) -> bool:
        """True for a store written before entities belonged to accounts."""
        ...

    def assign_owners(self, owner_of: Callable[[str, str | None], str]) -> int:
        """Give every entity of such a store the account ``owner_of(entity_id,
        last_action)`` names (application.migration holds the rule); returns how many."""
        ...

    def close(self) -> None: ...
