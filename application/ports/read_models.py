"""Read models: action status and counts, per-record logs and the audit trail, kept by projectors.

Each port has one contract test suite (``tests/contract``) run against every adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(slots=True)
class ActionView:
    action_id: str
    account_id: str
    entity_type: str
    action_type: str
    match_by: str | None
    source_name: str | None
    chunk_size: int
    expected_total: int | None
    created_at: str
    status: str = "QUEUEING"
    total: int | None = None
    chunk_count: int | None = None
    chunks_done: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    first_outcome_at: str | None = None
    last_outcome_at: str | None = None
    finished_at: str | None = None
    discrepancy: str | None = None
    actor: dict[str, Any] | None = None  # who submitted it (None for actions of v1)
    reverts: str | None = None  # the action this one reverts
    reverted_by: str | None = None  # the action that reverts this one
    retry_of: str | None = None  # the action whose failed rows this one submits again
    retried_by: str | None = None  # the action that submits this one's failed rows again
    dry_run: bool = False  # decided every record, changed nothing

    @property
    def processed(self) -> int:
        return self.succeeded + self.failed + self.skipped


@dataclass(slots=True)
class ActionDelta:
    """What one projected batch changes on one action view."""

    status: str | None = None
    total: int | None = None
    chunk_count: int | None = None
    chunks_done: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    first_outcome_at: str | None = None
    last_outcome_at: str | None = None
    finished_at: str | None = None
    discrepancy: str | None = None
    reverted_by: str | None = None
    retried_by: str | None = None


# Not frozen: one is made per input record, and a frozen dataclass's __init__ (one
# object.__setattr__ per field) took several times as long (measured: 1.18 -> 0.20 us for
# a log line). Treat it as a value all the same.
@dataclass(slots=True)
class LogLine:
    action_id: str
    row: int
    line: int | None
    chunk_no: int
    outcome: str
    entity_id: str | None
    op: str | None
    errors: list[dict[str, str]]
    reason: str | None
    duplicate_of_row: int | None
    position: int  # notification id of the outcome event
    # What the record's link fields named (RecordSucceeded.links; domain.links).
    links: dict[str, dict[str, Any]] | None = None


@dataclass(slots=True)  # not frozen: as LogLine
class EntityHistoryEntry:
    """An outcome event that changed an entity: the audit trail's index. What changed
    is read from the event itself (its position in the log): kept once, in the event
    store, not copied into the read models."""

    entity_id: str
    position: int  # notification id of the outcome event


@dataclass(frozen=True, slots=True)
class EntityKey:
    """An entity gave up this unique value (removed, or changed to another): where the
    entity store no longer answers for it, the audit by key still finds the entity."""

    account_id: str
    entity_type: str
    key: str
    entity_id: str
    position: int


@dataclass(slots=True)
class ViewChanges:
    """Everything one batch of events changes, applied atomically with its position."""

    new_actions: list[ActionView] = field(default_factory=list)
    deltas: dict[str, ActionDelta] = field(default_factory=dict)
    log_lines: list[LogLine] = field(default_factory=list)
    entity_history: list[EntityHistoryEntry] = field(default_factory=list)
    entity_keys: list[EntityKey] = field(default_factory=list)

    def delta(self, action_id: str) -> ActionDelta:
        found = self.deltas.get(action_id)
        if found is None:
            found = self.deltas[action_id] = ActionDelta()
        return found


@dataclass(frozen=True, slots=True)
class ActionFilter:
    account_id: str | None = None
    status: str | None = None
    entity_type: str | None = None
    created_from: str | None = None
    created_to: str | None = None


class ReadModelStore(Protocol):
    """Action status and counts, per-record logs and chunk inputs, kept by projectors.

    ``apply`` writes the changes and the projector's position together: a batch at or
    below the stored position, or computed from a position that has since moved,
    changes nothing, so redelivery, replay and a second projector are harmless.
    """

    def position(self, projection: str) -> int: ...

    def ping(self) -> None:
        """Raise if the store cannot be reached now (readiness checks)."""
        ...

    def count_by_status(self) -> dict[str, int]:
        """How many actions have each status (every account; statuses with none left out)."""
        ...

    def schema_version(self) -> int:
        """Which release's read models these are: 1 for stores from before versions
        were kept; a store made now has the adapter's current version."""
        ...

    def apply(
        self, projection: str, position: int, changes: ViewChanges, *, expected_position: int | None = None
    ) -> bool:
        """Write ``changes`` and move the projection to ``position``, atomically.

        Refused (False, nothing written) when ``position`` is not beyond the stored one,
        or when ``expected_position`` is given and differs from the stored one: the
        changes were computed from a position another projector has since moved.
        """
        ...

    def get_action(self, action_id: str) -> ActionView | None: ...

    def list_actions(
        self, filt: ActionFilter, *, before: tuple[str, str] | None = None, limit: int = 50
    ) -> list[ActionView]: ...

    def logs(
        self, action_id: str, *, outcome: str | None = None, after_row: int = 0, limit: int = 1000
    ) -> list[LogLine]: ...

    def entity_positions(self, entity_id: str) -> list[int]:
        """The positions of every outcome event that changed one entity, ascending."""
        ...

    def entities_holding(self, account_id: str, entity_type: str, key: str) -> list[EntityKey]:
        """The entities of an account that gave up this unique value, by position."""
        ...

    def entity_history_by_entity(self, after: tuple[str, int] | None, limit: int) -> list[EntityHistoryEntry]:
        """The whole index in (entity id, position) order, a page at a time, after the
        entry ``after`` names (what verify compares and folds into each entity)."""
        ...

    def close(self) -> None: ...


class ReadModelSets(Protocol):
    """Sets of read models by label: "" is the live set; another label names a set that
    a replay builds aside and then puts in place, or that verify rebuilds into."""

    def open(self, label: str = "") -> ReadModelStore: ...

    def discard(self, label: str) -> None:
        """Delete a set built aside (never the live one)."""
        ...

    def promote(self, label: str) -> None:
        """Make the set built aside under ``label`` the live one (projectors stopped)."""
        ...
