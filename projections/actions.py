"""The actions projection as a pure function of (position, event) pairs.

The same function serves the live projector and the replay, so rebuilt read models
equal the live ones by construction (``verify`` checks it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any
from uuid import UUID

from application.ports.read_models import (
    ActionView,
    EntityHistoryEntry,
    EntityKey,
    LogLine,
    ViewChanges,
)
from domain.bulk_action import ActionStatus, BulkAction, BulkChunk
from domain.entities.registry import entity_type as entity_type_named

PROJECTION_NAME = "actions"
# What the read models this projection writes hold. 2: the audit trail (entity
# history and keys) and the actor. Read models of an earlier version are rebuilt from
# the events by `bulkactions migrate` (every store records the version it was made at).
READ_MODEL_VERSION = 2


ActionOf = Callable[[str], ActionView | None]


def project(events: Iterable[tuple[int, Any]], action_of: ActionOf = lambda _: None) -> ViewChanges:
    """What ``events`` change. ``action_of`` answers for actions created before this
    batch (each entity's history needs its action's account and entity type)."""
    changes = ViewChanges()
    actions = _Actions(changes, action_of)
    for position, event in events:
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(changes, position, event)
        if type(event) in _ENTITY_CHANGES:
            _entity_history(changes, position, event, actions)
    return changes


class _Actions:
    """The actions a batch's outcomes belong to: created in the batch, or known before."""

    def __init__(self, changes: ViewChanges, action_of: ActionOf) -> None:
        self.changes, self.action_of = changes, action_of
        self.known: dict[str, ActionView | None] = {}

    def get(self, action_id: str) -> ActionView | None:
        if action_id not in self.known:
            created = next((v for v in self.changes.new_actions if v.action_id == action_id), None)
            self.known[action_id] = created or self.action_of(action_id)
        return self.known[action_id]


def _entity_history(changes: ViewChanges, position: int, e: Any, actions: _Actions) -> None:
    """Index the event under its entity; note a unique value the entity gives up (the
    entity store answers for the values entities hold now). A dry run's outcomes
    changed no entity: they are the action's own, not any entity's history."""
    action = actions.get(_uuid_text(e.action_id))
    if action is not None and action.dry_run:
        return
    changes.entity_history.append(EntityHistoryEntry(e.entity_id, position))
    if not e.changes or e.op == "created":
        return
    if action is None:  # an outcome without its action: nothing to file it under
        return
    given_up = e.changes.get(entity_type_named(action.entity_type).unique_field, [None])[0]
    if given_up is not None:
        changes.entity_keys.append(EntityKey(action.account_id, action.entity_type, given_up, e.entity_id, position))


def _created(changes: ViewChanges, _: int, e: BulkAction.Created) -> None:
    changes.new_actions.append(
        ActionView(
            action_id=str(e.originator_id),
            account_id=e.account_id,
            entity_type=e.entity_type,
            action_type=e.action_type,
            match_by=e.match_by,
            source_name=e.source.get("name"),
            chunk_size=e.chunk_size,
            expected_total=e.expected_total,
            created_at=e.timestamp.isoformat(),
            actor=e.actor,
            reverts=e.source.get("action_id") if e.source.get("kind") == "revert" else None,
            retry_of=e.retry_of,
            dry_run=e.dry_run,
        )
    )


def _retry_started(changes: ViewChanges, _: int, e: BulkAction.RetryStarted) -> None:
    changes.delta(str(e.originator_id)).retried_by = str(e.retry_id)


def _revert_started(changes: ViewChanges, _: int, e: BulkAction.RevertStarted) -> None:
    changes.delta(str(e.originator_id)).reverted_by = str(e.revert_id)


def _input_queued(changes: ViewChanges, _: int, e: BulkAction.InputQueued) -> None:
    delta = changes.delta(str(e.originator_id))
    delta.total, delta.chunk_count = e.total, e.chunk_count
    delta.status = ActionStatus.PROCESSING.value


def _cancelled(changes: ViewChanges, _: int, e: BulkAction.Cancelled) -> None:
    delta = changes.delta(str(e.originator_id))
    delta.status = ActionStatus.CANCELLED.value
    delta.finished_at = e.timestamp.isoformat()


def _completed(changes: ViewChanges, _: int, e: BulkAction.Completed) -> None:
    delta = changes.delta(str(e.originator_id))
    delta.status = ActionStatus.COMPLETED.value
    delta.finished_at = e.timestamp.isoformat()
    delta.discrepancy = e.discrepancy


def _chunk_processed(changes: ViewChanges, _: int, e: BulkChunk.ChunkProcessed) -> None:
    changes.delta(str(e.action_id)).chunks_done += 1


# Every outcome of an action has its action id, every outcome of a chunk one
# timestamp: their text forms are made once, not per event (str(UUID) and isoformat
# were a fifth of projecting an outcome).
@lru_cache(maxsize=4096)
def _uuid_text(value: UUID) -> str:
    return str(value)


@lru_cache(maxsize=4096)
def _iso(value: datetime) -> str:
    return value.isoformat()


def _logged(
    changes: ViewChanges,
    position: int,
    e: Any,
    outcome: str,
    entity_id: str | None = None,
    op: str | None = None,
    errors: list[dict[str, str]] | None = None,
    reason: str | None = None,
    duplicate_of_row: int | None = None,
    links: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Count the outcome on its action and log its line."""
    action_id = _uuid_text(e.action_id)
    delta = changes.delta(action_id)
    setattr(delta, outcome, getattr(delta, outcome) + 1)
    at = _iso(e.timestamp)
    if delta.first_outcome_at is None:
        delta.first_outcome_at = at
    delta.last_outcome_at = at
    changes.log_lines.append(
        LogLine(
            action_id,
            e.row,
            e.line,
            e.chunk_no,
            outcome,
            entity_id,
            op,
            errors or [],
            reason,
            duplicate_of_row,
            position,
            links,
        )
    )


# One handler per outcome kind, reading that kind's fields directly: one is projected
# per input record, and a shared handler's getattr with defaults cost ~1 us of each.
def _succeeded(changes: ViewChanges, position: int, e: BulkChunk.RecordSucceeded) -> None:
    _logged(changes, position, e, "succeeded", e.entity_id or None, e.op, links=e.links)


def _failed(changes: ViewChanges, position: int, e: BulkChunk.RecordFailed) -> None:
    _logged(changes, position, e, "failed", errors=e.errors)


def _skipped(changes: ViewChanges, position: int, e: BulkChunk.RecordSkipped) -> None:
    _logged(changes, position, e, "skipped", e.duplicate_of, reason=e.reason, duplicate_of_row=e.duplicate_of_row)


# Events that change an entity: each is a line of that entity's audit trail.
_ENTITY_CHANGES = (BulkChunk.RecordSucceeded, BulkChunk.LinkedEntityCreated)

_HANDLERS: dict[type, Any] = {
    BulkAction.Created: _created,
    BulkAction.InputQueued: _input_queued,
    BulkAction.Cancelled: _cancelled,
    BulkAction.Completed: _completed,
    BulkAction.RevertStarted: _revert_started,
    BulkAction.RetryStarted: _retry_started,
    BulkChunk.ChunkProcessed: _chunk_processed,
    BulkChunk.RecordSucceeded: _succeeded,
    BulkChunk.RecordFailed: _failed,
    BulkChunk.RecordSkipped: _skipped,
}
# What a projector reads of the log: the kinds above and the entity changes (which feed
# the entity history index). Anything else is skipped unread.
PROJECTED_KINDS: tuple[type, ...] = tuple(dict.fromkeys([*_HANDLERS, *_ENTITY_CHANGES]))
