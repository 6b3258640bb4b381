"""Process one chunk: decide every record's outcome and store one event per record.

Idempotent by construction, so a redelivered chunk or a chunk re-run after a crash
gives the same outcomes and writes nothing twice:
- inserted entities have deterministic ids (``entity_id_for(action, row)``), so an
  insert that meets its own earlier write counts as the same success;
- updates carry the (action, row) that made them, and the store does not re-apply a
  change over a later row of the same action;
- the outcome events have deterministic versions, so a second save collides.

An infrastructure fault (a store down, a full disk) is never a record's outcome: it
is raised for the whole chunk (``StoreUnavailableError``), which the worker retries.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Literal
from uuid import UUID

from application.dry_run import DryRunEntities
from application.event_store import BulkActionLog
from application.faults import FaultClassifier, FaultPolicy, StoreUnavailableError
from application.links import EntityLinker, links_apply
from application.ports.entities import (
    EntityChange,
    EntityDelete,
    EntityRef,
    EntityRevert,
    EntityStore,
    NewEntity,
    StoredChange,
    UpdateResult,
)
from application.ports.metrics import Metrics, NoMetrics
from application.ports.quotas import Clock
from domain.bulk_action import (
    TARGETED_ACTIONS,
    ActionType,
    BulkAction,
    BulkChunk,
    Outcome,
    RecordResult,
    entity_id_head,
    entity_id_text,
    record_outcomes,
)
from domain.entities.base import EntityType, FieldError, ValidRecord
from domain.entities.registry import entity_type as entity_type_named

log = logging.getLogger(__name__)

SYSTEM_ERROR = "system_error"
# What a revert does to undo a change, by the op of the change (otherwise: restore).
_REVERT_KINDS: dict[str, Literal["remove", "recreate"]] = {"created": "remove", "deleted": "recreate"}


def _failed(row: int, line: int | None, errors: list[FieldError]) -> RecordResult:
    return RecordResult(row, line, Outcome.FAILED, errors=[e.as_dict() for e in errors])


def _left_a_change(event: Any) -> bool:
    """An outcome that changed or removed an existing entity: the store keeps its change
    until it is confirmed."""
    return isinstance(event, BulkChunk.RecordSucceeded) and event.op in ("updated", "reverted", "deleted")


def _created(row: int, line: int | None, entity_id: str, values: dict[str, Any]) -> RecordResult:
    """An insert: the values it set (before: none), at the entity's first version."""
    changes = {name: [None, value] for name, value in values.items()}
    return RecordResult(row, line, Outcome.SUCCEEDED, entity_id=entity_id, op="created", changes=changes, version=1)


class ChunkDecider:
    """Turns one chunk's input records into outcomes, using the entity store."""

    def __init__(
        self,
        entities: EntityStore,
        account_id: str,
        action_id: UUID,
        entity_type: str,
        action_type: str,
        match_by: str | None,
        *,
        is_infrastructure: FaultClassifier,
        create_links: bool = False,
    ) -> None:
        self.entities = entities
        self.is_infrastructure = is_infrastructure
        self.account_id = account_id
        self.action_id = action_id
        self.action_key = str(action_id)
        self.entity_head = entity_id_head(action_id)
        self.etype: type[EntityType] = entity_type_named(entity_type)
        self.action_type = ActionType(action_type)
        self.match_by = match_by or self.etype.unique_field
        self.linker = EntityLinker(entities, account_id, action_id, create=create_links)

    def decide(self, records: list[dict[str, Any]]) -> list[RecordResult]:
        try:
            return self._decide(records)
        except Exception as exc:
            self._raise_if_infrastructure(exc)
            # One bad record must not take its chunk down: isolate it by going one by one.
            log.exception("chunk of action %s failed as a batch; retrying record by record", self.action_id)
        results = []
        for record in records:
            try:
                results += self._decide([record])
            except Exception as exc:
                self._raise_if_infrastructure(exc)
                log.exception("record %s of action %s failed", record.get("row"), self.action_id)
                error = FieldError("record", SYSTEM_ERROR, f"{type(exc).__name__}: {exc}")
                results.append(_failed(record["row"], record.get("line"), [error]))
        return results

    def _raise_if_infrastructure(self, exc: Exception) -> None:
        if self.is_infrastructure(exc):
            raise StoreUnavailableError(f"{type(exc).__name__}: {exc}") from exc

    def _decide(self, records: list[dict[str, Any]]) -> list[RecordResult]:
        results: list[RecordResult | None] = [None] * len(records)
        inserts: list[tuple[int, NewEntity]] = []
        changes: list[tuple[int, EntityChange]] = []
        deletes: list[tuple[int, EntityDelete]] = []
        for index, record in enumerate(records):
            row, line = record["row"], record.get("line")
            if "error" in record:
                results[index] = _failed(
                    row, line, [FieldError("record", record.get("code", "unparseable"), record["error"])]
                )
                continue
            if "duplicate_of_row" in record:
                results[index] = self._repeated(row, line, record["duplicate_of_row"])
                continue
            decision = self._validated(row, record["data"])
            if isinstance(decision, list):
                results[index] = _failed(row, line, decision)
            elif isinstance(decision, EntityDelete):
                deletes.append((index, decision))
            elif isinstance(decision, NewEntity):
                inserts.append((index, decision))
            else:
                changes.append((index, decision))
        if self.action_type is ActionType.UPSERT:
            self._upsert(records, changes, results)
        elif self.action_type is ActionType.DELETE:
            self._delete(records, deletes, results)
        else:
            self._insert(records, inserts, results)
            self._update(records, changes, results)
        decided = [r for r in results if r is not None]
        if links_apply(self.etype, self.action_type):
            self.linker.link(self.etype, records, decided)
        return decided

    def _validated(self, row: int, data: dict[str, Any]) -> NewEntity | EntityChange | EntityDelete | list[FieldError]:
        if self.action_type is ActionType.DELETE:
            return self._target(row, data)
        if self.action_type is ActionType.INSERT:
            valid = self.etype.validate(data)
            if isinstance(valid, list):
                return valid
            return self._new_entity(row, valid)
        if self.action_type is ActionType.UPSERT:
            valid = self.etype.validate(data)
            if isinstance(valid, list):
                return valid
            assert valid.unique_key is not None
            return EntityChange("unique", valid.unique_key, valid.values, None, self.action_key, row)
        # UPDATE: the match field names the target; the other fields are the change.
        fields = dict(data)
        target = fields.pop("id", None) if self.match_by == "id" else fields.get(self.match_by)
        if target is None or target == "":
            return [FieldError(self.match_by, "missing", f"UPDATE needs {self.match_by!r} to find the record")]
        valid = self.etype.validate_partial(fields)
        if isinstance(valid, list):
            return valid
        if self.match_by == "id":
            return EntityChange("id", str(target), valid.values, valid.unique_key, self.action_key, row)
        return EntityChange("unique", str(valid.unique_key), valid.values, None, self.action_key, row)

    def _target(self, row: int, data: dict[str, Any]) -> EntityDelete | list[FieldError]:
        """A delete's target: its id, or its unique value normalised (other fields are
        not read)."""
        raw = data.get(self.match_by)
        if raw is None or raw == "":
            return [FieldError(self.match_by, "missing", f"DELETE needs {self.match_by!r} to find the record")]
        if self.match_by == "id":
            return EntityDelete("id", str(raw), self.action_key, row)
        key = self.etype.normalise_unique(raw)
        if isinstance(key, list):
            return key
        return EntityDelete("unique", key, self.action_key, row)

    def _delete(
        self,
        records: list[dict[str, Any]],
        deletes: list[tuple[int, EntityDelete]],
        results: list[RecordResult | None],
    ) -> None:
        if not deletes:
            return
        outcomes = self.entities.delete_many(self.account_id, self.etype.name, [item for _, item in deletes])
        for (index, item), outcome in zip(deletes, outcomes, strict=True):
            line = records[index].get("line")
            if outcome.status in ("removed", "already_applied"):
                results[index] = RecordResult(
                    item.row,
                    line,
                    Outcome.SUCCEEDED,
                    entity_id=outcome.entity_id,
                    op="deleted",
                    changes=outcome.changes,
                    version=outcome.version,
                )
            else:
                error = FieldError(
                    self.match_by, "not_found", f"no {self.etype.name} with {self.match_by} {item.match_value!r}"
                )
                results[index] = _failed(item.row, line, [error])

    def _new_entity(self, row: int, valid: ValidRecord) -> NewEntity:
        assert valid.unique_key is not None
        entity_id = entity_id_text(self.entity_head, row)
        return NewEntity(entity_id, valid.unique_key, valid.values, self.action_key, row)

    def _insert(
        self,
        records: list[dict[str, Any]],
        inserts: list[tuple[int, NewEntity]],
        results: list[RecordResult | None],
    ) -> None:
        if not inserts:
            return
        outcomes = self.entities.insert_many(self.account_id, self.etype.name, [item for _, item in inserts])
        for (index, item), outcome in zip(inserts, outcomes, strict=True):
            line = records[index].get("line")
            if outcome.inserted or (outcome.existing and outcome.existing.entity_id == item.entity_id):
                results[index] = _created(item.row, line, item.entity_id, item.values)
            else:
                assert outcome.existing is not None
                results[index] = self._duplicate(item.row, line, item.unique_key, outcome.existing)

    def _update(
        self,
        records: list[dict[str, Any]],
        changes: list[tuple[int, EntityChange]],
        results: list[RecordResult | None],
    ) -> None:
        if not changes:
            return
        outcomes = self.entities.update_many(self.account_id, self.etype.name, [item for _, item in changes])
        for (index, item), outcome in zip(changes, outcomes, strict=True):
            results[index] = self._update_result(item, records[index].get("line"), outcome)

    def _update_result(self, item: EntityChange, line: int | None, outcome: UpdateResult) -> RecordResult:
        if outcome.status in ("updated", "already_applied", "unchanged"):
            if outcome.entity_id == entity_id_text(self.entity_head, item.row):
                # An upsert's own insert, met again by a re-run: what the insert set.
                return _created(item.row, line, outcome.entity_id, item.values)
            op = "unchanged" if outcome.status == "unchanged" else "updated"
            return RecordResult(
                item.row,
                line,
                Outcome.SUCCEEDED,
                entity_id=outcome.entity_id,
                op=op,
                changes=outcome.changes or {},
                version=outcome.version,
            )
        if outcome.status == "not_found":
            error = FieldError(
                self.match_by, "not_found", f"no {self.etype.name} with {self.match_by} {item.match_value!r}"
            )
            return _failed(item.row, line, [error])
        assert outcome.existing is not None
        return self._duplicate(item.row, line, item.new_unique_key or "", outcome.existing)

    def _upsert(
        self,
        records: list[dict[str, Any]],
        changes: list[tuple[int, EntityChange]],
        results: list[RecordResult | None],
    ) -> None:
        """Update what exists, insert what does not; a key inserted meanwhile (by an
        earlier row of this chunk or another worker) is updated on a second pass."""
        if not changes:
            return
        first = self.entities.update_many(self.account_id, self.etype.name, [item for _, item in changes])
        missing = []
        for (index, item), outcome in zip(changes, first, strict=True):
            if outcome.status == "not_found":
                missing.append((index, item))
            else:
                results[index] = self._update_result(item, records[index].get("line"), outcome)
        if not missing:
            return
        new = [
            NewEntity(entity_id_text(self.entity_head, c.row), c.match_value, c.values, c.action_id, c.row)
            for _, c in missing
        ]
        inserted = self.entities.insert_many(self.account_id, self.etype.name, new)
        retry = []
        for (index, item), entity, insert in zip(missing, new, inserted, strict=True):
            if insert.inserted or (insert.existing and insert.existing.entity_id == entity.entity_id):
                results[index] = _created(item.row, records[index].get("line"), entity.entity_id, entity.values)
            else:
                retry.append((index, item))
        if retry:
            self._update(records, retry, results)

    def _repeated(self, row: int, line: int | None, first_row: int) -> RecordResult:
        by_id = self.action_type in TARGETED_ACTIONS and self.match_by == "id"
        target = "id" if by_id else self.etype.unique_field
        reason = f"duplicate: the same {target} already appears in row {first_row} of this input"
        return RecordResult(row, line, Outcome.SKIPPED, reason=reason, duplicate_of_row=first_row)

    def _duplicate(self, row: int, line: int | None, key: str, existing: EntityRef) -> RecordResult:
        same_input = existing.action_id == self.action_key and existing.row is not None
        where = f" (row {existing.row} of this input)" if same_input else ""
        holder = f"{self.etype.name} {existing.entity_id}{where}"
        reason = f"duplicate: {self.etype.unique_field} {key!r} already belongs to {holder}"
        return RecordResult(
            row,
            line,
            Outcome.SKIPPED,
            entity_id=existing.entity_id,
            reason=reason,
            duplicate_of_row=existing.row if same_input else None,
        )


class RevertDecider(ChunkDecider):
    """A revert's chunk: each record says what a row of the original did to its entity
    (``application.reversion.revert_input``); the entity store undoes it if nothing
    changed the entity since."""

    def _decide(self, records: list[dict[str, Any]]) -> list[RecordResult]:
        results: list[RecordResult | None] = [None] * len(records)
        reverts: list[tuple[int, EntityRevert]] = []
        for index, record in enumerate(records):
            row, line, data = record["row"], record.get("line"), record["data"]
            target = data.get("target")
            if target is None:
                reason = f"nothing_to_revert: {data['nothing']}"
                results[index] = RecordResult(row, line, Outcome.SKIPPED, reason=reason)
                continue
            reverts.append((index, self._revert_of(target, row)))
        if reverts:
            done = self.entities.revert_many(self.account_id, self.etype.name, [item for _, item in reverts])
            for (index, item), outcome in zip(reverts, done, strict=True):
                results[index] = self._reverted(item, records[index].get("line"), outcome)
        return [r for r in results if r is not None]

    def _revert_of(self, target: dict[str, Any], row: int) -> EntityRevert:
        """Undo an insert (remove), a delete (recreate, with the key it held) or an update."""
        kind: Literal["restore", "remove", "recreate"] = _REVERT_KINDS.get(target["op"], "restore")
        key = None
        if kind == "recreate":
            value = target["changes"].get(self.etype.unique_field, [None])[0]
            found = None if value is None else self.etype.normalise_unique(value)
            key = found if isinstance(found, str) else None
        entity_id, changes = target["entity_id"], target["changes"]
        return EntityRevert(kind, entity_id, changes, self.action_key, row, target.get("version"), key)

    def _reverted(self, item: EntityRevert, line: int | None, outcome: UpdateResult) -> RecordResult:
        if outcome.status in ("updated", "removed", "recreated", "already_applied"):
            op = "deleted" if item.kind == "remove" else "reverted"
            return RecordResult(
                item.row,
                line,
                Outcome.SUCCEEDED,
                entity_id=item.entity_id,
                op=op,
                changes=outcome.changes,
                version=outcome.version,
            )
        if item.kind == "recreate" and outcome.entity_id not in (None, item.entity_id):
            reason = (
                f"changed_since: {self.etype.name} {item.entity_id} cannot come back: its {self.etype.unique_field}"
                f" {item.key!r} belongs to {self.etype.name} {outcome.entity_id} now"
            )
        elif outcome.existing is not None:
            by = outcome.existing
            where = f" (row {by.row})" if by.row is not None else ""
            reason = (
                f"changed_since: {self.etype.name} {item.entity_id} was changed by action {by.action_id}{where}"
                " after the reverted action"
            )
        else:
            reason = f"changed_since: {self.etype.name} {item.entity_id} is gone"
        return RecordResult(item.row, line, Outcome.SKIPPED, entity_id=item.entity_id, reason=reason)


class ChunkProcessor:
    """The use case run by workers for each chunk message."""

    def __init__(
        self,
        events: BulkActionLog,
        entities: EntityStore,
        clock: Clock,
        faults: FaultPolicy,
        metrics: Metrics | None = None,
    ) -> None:
        self.events = events
        self.entities = entities
        self.clock = clock
        self.faults = faults
        self.metrics = metrics or NoMetrics()

    def process(self, action_id: UUID, chunk_no: int) -> str:
        """Returns what happened: processed, duplicate (already done), cancelled, missing."""
        started = time.monotonic()
        action = self.events.get_action(action_id)
        if action.cancelled:
            return "cancelled"
        if self.events.chunk_summary(action_id, chunk_no) is not None:
            # Done before; if that run stopped before confirming, confirm now.
            self._confirm(action, [e for e in self.events.chunk_events(action_id, chunk_no) if _left_a_change(e)])
            return "duplicate"
        queued = self.events.chunk_queued(action_id, chunk_no)
        if queued is None:
            return "missing"
        decider_class = RevertDecider if action.reverts is not None else ChunkDecider
        decider = decider_class(
            DryRunEntities(self.entities) if action.dry_run else self.entities,
            action.account_id,
            action_id,
            action.entity_type,
            action.action_type,
            action.match_by,
            is_infrastructure=self.faults.is_infrastructure,
            create_links=action.link_companies,
        )
        results = decider.decide(queued.records)
        if action.dry_run:
            for result in results:  # a dry run's links say what would be created; nothing was
                result.created = []
        events = record_outcomes(action_id, chunk_no, results, self.clock.now())
        stored = self.events.record_outcomes(events)  # False: another delivery stored the same
        self._confirm(action, [e for e in events if _left_a_change(e)])
        if not stored:
            return "duplicate"
        # Timed only where this delivery's outcomes were the ones stored: one sample per chunk.
        self.metrics.chunk_processed(action.entity_type, action.action_type, time.monotonic() - started)
        return "processed"

    def _confirm(self, action: BulkAction, updates: list[Any]) -> None:
        """The outcome events hold these changes now: the entity store may forget them."""
        if action.dry_run:  # it wrote nothing
            return
        done = [StoredChange(e.entity_id, str(e.action_id), e.row) for e in updates]
        self.entities.confirm(action.account_id, action.entity_type, done)

    def is_done(self, action_id: UUID, chunk_no: int) -> bool:
        """Whether the chunk's outcomes are stored."""
        return self.events.chunk_summary(action_id, chunk_no) is not None

    def fail_chunk(self, action_id: UUID, chunk_no: int, reason: str) -> bool:
        """A chunk that keeps crashing its worker (dead-lettered): every record that has
        no outcome yet is recorded as failed with a system error, so the action ends."""
        if self.events.chunk_summary(action_id, chunk_no) is not None:
            return False
        queued = self.events.chunk_queued(action_id, chunk_no)
        if queued is None:
            return False
        error = [FieldError("record", SYSTEM_ERROR, reason).as_dict()]
        results = [RecordResult(r["row"], r.get("line"), Outcome.FAILED, errors=error) for r in queued.records]
        return self.events.record_outcomes(record_outcomes(action_id, chunk_no, results, self.clock.now()))
