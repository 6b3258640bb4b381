"""Revert a whole action: a new action of type ``revert``, linked both ways to the
original, with one outcome per record of the original.

Its input is read from the original's outcome events (never from a file): each record
says what the original row did to its entity (the fields it changed with before and
after, or the values it inserted), or that there is nothing to revert. Processing is
``RevertDecider`` (application.chunk_processing); the entity store restores a field
only if it still holds what the original set, and removes an inserted entity only if
it still holds exactly what the insert set.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import orjson

from application.event_store import ActionChangedError, ActionNotFoundError, BulkActionLog
from application.ports.inputs import InputRecord, InputScan
from application.ports.quotas import Clock, QuotaGate, QuotaLimits
from domain.bulk_action import ActionType, BulkAction, BulkChunk

REVERT_FORMAT = "revert"


def revert_input(event: Any) -> dict[str, Any]:
    """What a revert needs to know of one outcome event of the original."""
    if isinstance(event, BulkChunk.RecordFailed):
        return {"nothing": "the record failed"}
    if isinstance(event, BulkChunk.RecordSkipped):
        return {"nothing": "the record was skipped"}
    if event.changes is None:
        return {"nothing": "recorded before changes were kept, so what to restore is unknown"}
    if event.op == "unchanged":
        return {"nothing": "the record changed nothing"}
    target = {"entity_id": event.entity_id, "op": event.op, "changes": event.changes}
    return {"target": target | {"version": event.entity_version}}


class RevertSource:
    """The original action's outcomes as the revert's input records, chunk by chunk."""

    format = REVERT_FORMAT

    def __init__(self, events: BulkActionLog, original: BulkAction) -> None:
        self.events = events
        self.original = original
        self.name = f"revert of {original.id}"

    def describe(self) -> dict[str, Any]:
        return {"kind": "revert", "name": self.name, "action_id": str(self.original.id), "format": self.format}

    def scan(self) -> InputScan:
        sha, total = hashlib.sha256(), 0
        for record in self.records():
            sha.update(orjson.dumps(record.data))
            total += 1
        return InputScan(total=total, sha256=sha.hexdigest(), size=0)

    def records(self) -> Iterator[InputRecord]:
        for chunk_no in range(self.original.chunk_count or 0):
            for event in self.events.chunk_events(self.original.id, chunk_no):
                if isinstance(event, BulkChunk.RecordSucceeded | BulkChunk.RecordFailed | BulkChunk.RecordSkipped):
                    yield InputRecord(event.row, event.line, revert_input(event))


class Reversion:
    """Start reverting an action: the revert action and the original's link to it, in
    one transaction (so two reverts of one action can never both start)."""

    def __init__(self, events: BulkActionLog, quota: QuotaGate, clock: Clock) -> None:
        self.events = events
        self.quota = quota
        self.clock = clock

    def start(
        self, account_id: str | None, original_id: UUID, limits: QuotaLimits, actor: dict[str, Any] | None
    ) -> UUID:
        """The revert's id. ``account_id`` (None: any, the CLI's operator) must own the
        original: another account's action is not found."""
        revert_id = uuid4()
        while True:
            original = self.events.get_action(original_id)
            if account_id is not None and original.account_id != account_id:
                raise ActionNotFoundError(original_id)
            original.start_revert(revert_id)  # the domain refuses a second revert, or an unfinished action
            revert = self._revert_of(original, revert_id, actor)
            self.quota.reserve(
                original.account_id, str(revert_id), revert.expected_total or 0, limits, self.clock.now()
            )
            try:
                self.events.save_together(revert, original)
                return revert_id
            except ActionChangedError:
                self.quota.release(original.account_id, str(revert_id))  # changed meanwhile: decide again
            except BaseException:
                self.quota.release(original.account_id, str(revert_id))
                raise

    def _revert_of(self, original: BulkAction, revert_id: UUID, actor: dict[str, Any] | None) -> BulkAction:
        source = RevertSource(self.events, original)
        return BulkAction.submit(
            revert_id,
            original.account_id,
            original.entity_type,
            ActionType.REVERT.value,
            None,
            source.describe(),
            original.chunk_size,
            original.total or 0,
            actor,
        )
