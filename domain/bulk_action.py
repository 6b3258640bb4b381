"""The BulkAction aggregate: one header stream plus one stream per chunk.

Why two kinds of stream: a 1,000,000-record action has a million outcome events.
Kept in one stream, every worker would contend on its version and every load would
replay it. So the header stream (``BulkAction``) holds only Created, InputQueued,
Cancelled and Completed, and each chunk has its own stream (``BulkChunk``) whose
first event carries the chunk's input records (history and replay never depend on
a file that may be gone) and whose next events are one outcome per record, saved in
one transaction, then a ``ChunkProcessed`` summary. Versions are deterministic
(record i of a chunk is version i + 2), so a redelivered chunk collides with what is
stored instead of being counted twice.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, DomainEvent, event

from domain.errors import (
    ActionAlreadyFinishedError,
    ActionNotFinishedError,
    AlreadyRetriedError,
    AlreadyRevertedError,
    CannotRetryError,
    CannotRevertError,
    InputNotQueuedError,
)


class ActionType(enum.StrEnum):
    INSERT = "insert"
    UPDATE = "update"
    UPSERT = "upsert"
    DELETE = "delete"  # by unique value or by id; the entity goes, its values stay in the events
    REVERT = "revert"  # made by reverting another action, never submitted with input


SUBMITTED_ACTIONS = (ActionType.INSERT, ActionType.UPDATE, ActionType.UPSERT, ActionType.DELETE)
# Actions that name an existing target, by its unique value (default) or by its id.
TARGETED_ACTIONS = (ActionType.UPDATE, ActionType.DELETE)


class ActionStatus(enum.StrEnum):
    QUEUEING = "QUEUEING"  # created; input still being stored as chunks
    PROCESSING = "PROCESSING"  # every chunk queued; outcomes arriving
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


class Outcome(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


_ACTION_NAMESPACE = uuid5(NAMESPACE_URL, "bulk-action-platform/action")


def action_id_for_key(account_id: str, idempotency_key: str) -> UUID:
    """A retried submission with the same key names the same action."""
    return uuid5(_ACTION_NAMESPACE, f"{account_id}\x00{idempotency_key}")


def chunk_id(action_id: UUID, chunk_no: int) -> UUID:
    return uuid5(action_id, f"chunk:{chunk_no}")


def entity_id_for(action_id: UUID, row: int) -> UUID:
    """Deterministic id of an entity inserted by a row: a re-run recognises its own write.

    A UUIDv8 made of the action id's high 64 bits and the row number, so one action's
    entities get ascending ids: stores append to their primary-key B-tree instead of
    touching a random page per record (random uuid5 ids made every chunk rewrite
    ~1000 pages of the SQLite entity table).
    """
    low = (0b10 << 62) | row
    return UUID(int=(entity_id_prefix(action_id) << 64) | low)


def entity_id_head(action_id: UUID) -> str:
    """The text every entity id an action's rows make starts with: its first 19
    characters (``entity_id_prefix`` in hex, dashed as a UUID's text is)."""
    digits = f"{entity_id_prefix(action_id):016x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-"


@functools.lru_cache(maxsize=1024)
def _entity_id_head_of(action_id: UUID | str) -> str | None:
    if isinstance(action_id, str):
        try:
            action_id = UUID(action_id)
        except ValueError:
            return None
    return entity_id_head(action_id)


def own_entity_id(action_id: UUID | str, row: int) -> str | None:
    """The id (text) of the entity row ``row`` of the action inserts, by the action's id
    as a UUID or as text; None for a text that is not a UUID, which no import has. The
    action's head is cached: what stores an outcome or its log line leaves this id out,
    and reading one puts it back, once a record."""
    head = _entity_id_head_of(action_id)
    return None if head is None else entity_id_text(head, row)


def entity_id_text(head: str, row: int) -> str:
    """``str(entity_id_for(action, row))`` from the action's ``entity_id_head``, without
    building a UUID object (it runs once per inserted record and once per projected
    outcome; ``UUID()`` validates its arguments in Python, several microseconds, and
    formatting all 128 bits each time took three times as long as the row's 64)."""
    low = f"{(0b10 << 62) | row:016x}"
    return f"{head}{low[:4]}-{low[4:]}"


def linked_entity_id(action_id: UUID, row: int) -> UUID:
    """Deterministic id of an entity a row creates for a link (the company of a contact's
    ``company_domain``): the row's own entity id with bit 61 set, so it never meets the
    row's entity and still names the action that made it (``entity_id_prefix``)."""
    return UUID(int=entity_id_for(action_id, row).int | (1 << 61))


def entity_id_prefix(action_id: UUID) -> int:
    """The high 64 bits shared by every entity id an action's rows make: an entity id
    names the action that inserted it (``entity_id.int >> 64``)."""
    return (action_id.int >> 64) & ~(0xF << 12) | (0x8 << 12)


def outcome_version(index_in_chunk: int) -> int:
    return index_in_chunk + 2


class BulkAction(Aggregate):
    """Header of one bulk action: what, for whom, how many, and how it ended."""

    class Created(Aggregate.Created):
        """v2 adds who submitted it (``actor``: the account, the API key's id or the
        operating-system user of the CLI, the request id); v1 events did not say.
        v3 adds ``callback_url``: where the final status is POSTed (None: nowhere).
        v4 adds ``retry_of`` (the action whose failed rows this one submits again) and
        ``dry_run`` (decide every record, change nothing); earlier actions were neither.
        v5 adds how the input's columns became fields (``column_mapping``: {column as
        written: field, or None where the column was dropped}); None where every column
        was its field (as every action before v5).
        v6 adds ``link_companies``: an entity a record links to that does not exist is
        created (domain.links); actions before v6 only linked to stored entities."""

        class_version = 6
        account_id: str
        entity_type: str
        action_type: str
        match_by: str | None
        source: dict[str, Any]
        chunk_size: int
        expected_total: int | None
        actor: dict[str, Any] | None
        callback_url: str | None
        retry_of: str | None
        dry_run: bool
        column_mapping: dict[str, str | None] | None
        link_companies: bool

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["actor"] = None

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state["callback_url"] = None

        @staticmethod
        def upcast_v3_v4(state: dict[str, Any]) -> None:
            state["retry_of"] = None
            state["dry_run"] = False

        @staticmethod
        def upcast_v4_v5(state: dict[str, Any]) -> None:
            state["column_mapping"] = None

        @staticmethod
        def upcast_v5_v6(state: dict[str, Any]) -> None:
            state["link_companies"] = False

    @event(Created)
    def __init__(
        self,
        account_id: str,
        entity_type: str,
        action_type: str,
        match_by: str | None,
        source: dict[str, Any],
        chunk_size: int,
        expected_total: int | None,
        actor: dict[str, Any] | None,
        callback_url: str | None = None,
        retry_of: str | None = None,
        dry_run: bool = False,
        column_mapping: dict[str, str | None] | None = None,
        link_companies: bool = False,
    ) -> None:
        self.account_id = account_id
        self.link_companies = link_companies
        self.actor = actor
        self.callback_url = callback_url
        self.retry_of = UUID(retry_of) if retry_of else None
        self.dry_run = dry_run
        self.column_mapping = column_mapping
        self.entity_type = entity_type
        self.action_type = action_type
        self.match_by = match_by
        self.source = source
        self.chunk_size = chunk_size
        self.expected_total = expected_total
        self.total: int | None = None
        self.chunk_count: int | None = None
        self.cancelled = False
        self.completed = False
        self.reverted_by: UUID | None = None
        self.retried_by: UUID | None = None

    @classmethod
    def submit(
        cls,
        action_id: UUID,
        account_id: str,
        entity_type: str,
        action_type: str,
        match_by: str | None,
        source: dict[str, Any],
        chunk_size: int,
        expected_total: int | None,
        actor: dict[str, Any] | None = None,
        callback_url: str | None = None,
        *,
        retry_of: UUID | None = None,
        dry_run: bool = False,
        column_mapping: dict[str, str | None] | None = None,
        link_companies: bool = False,
    ) -> BulkAction:
        """A new action with a given id (random, or derived from an idempotency key)."""
        return cls._create(
            cls.Created,
            id=action_id,
            account_id=account_id,
            entity_type=entity_type,
            action_type=action_type,
            match_by=match_by,
            source=source,
            chunk_size=chunk_size,
            expected_total=expected_total,
            actor=actor,
            callback_url=callback_url,
            retry_of=str(retry_of) if retry_of else None,
            dry_run=dry_run,
            column_mapping=column_mapping,
            link_companies=link_companies,
        )

    @property
    def status(self) -> ActionStatus:
        if self.completed:
            return ActionStatus.COMPLETED
        if self.cancelled:
            return ActionStatus.CANCELLED
        if self.total is None:
            return ActionStatus.QUEUEING
        return ActionStatus.PROCESSING

    @property
    def is_finished(self) -> bool:
        return self.completed or self.cancelled

    class InputQueued(Aggregate.Event):
        total: int
        chunk_count: int

    def mark_input_queued(self, total: int, chunk_count: int) -> None:
        if self.is_finished:
            raise ActionAlreadyFinishedError(f"action {self.id} is {self.status}")
        if self.total is None:
            self.trigger_event(self.InputQueued, total=total, chunk_count=chunk_count)

    @event(InputQueued)
    def _input_queued(self, total: int, chunk_count: int) -> None:
        self.total = total
        self.chunk_count = chunk_count

    @property
    def reverts(self) -> UUID | None:
        """The action this one reverts, if it is a revert."""
        return UUID(self.source["action_id"]) if self.source.get("kind") == "revert" else None

    class RevertStarted(Aggregate.Event):
        revert_id: UUID

    def start_revert(self, revert_id: UUID) -> None:
        """Link this action to the action that reverts it: once, and only when it has
        finished (a revert of work still being done would race it)."""
        if not self.is_finished:
            raise ActionNotFinishedError(f"action {self.id} is {self.status}: only a finished action can be reverted")
        if self.reverts is not None:
            raise CannotRevertError(f"action {self.id} is itself a revert; submit the records again instead")
        if self.dry_run:
            raise CannotRevertError(f"action {self.id} is a dry run: it changed nothing")
        if self.reverted_by is not None:
            raise AlreadyRevertedError(f"action {self.id} was already reverted by action {self.reverted_by}")
        self.trigger_event(self.RevertStarted, revert_id=revert_id)

    @event(RevertStarted)
    def _revert_started(self, revert_id: UUID) -> None:
        self.reverted_by = revert_id

    class RetryStarted(Aggregate.Event):
        retry_id: UUID

    def start_retry(self, retry_id: UUID) -> None:
        """Link this action to the action that submits its failed rows again: once (a
        second retry goes from the first retry's failed rows, so the chain stays one
        line), and only when it has finished (its failed rows are known)."""
        if not self.is_finished:
            raise ActionNotFinishedError(f"action {self.id} is {self.status}: only a finished action can be retried")
        if self.reverts is not None:
            raise CannotRetryError(f"action {self.id} is a revert; its rows cannot be submitted again")
        if self.dry_run:
            raise CannotRetryError(f"action {self.id} is a dry run; submit the file itself")
        if self.retried_by is not None:
            raise AlreadyRetriedError(
                f"action {self.id} was already retried by action {self.retried_by}; retry that one's failed rows"
            )
        self.trigger_event(self.RetryStarted, retry_id=retry_id)

    @event(RetryStarted)
    def _retry_started(self, retry_id: UUID) -> None:
        self.retried_by = retry_id

    class Cancelled(Aggregate.Event):
        reason: str

    def cancel(self, reason: str) -> None:
        if self.is_finished:
            raise ActionAlreadyFinishedError(f"action {self.id} is {self.status}")
        self.trigger_event(self.Cancelled, reason=reason)

    @event(Cancelled)
    def _cancelled(self, reason: str) -> None:
        self.cancelled = True

    class Completed(Aggregate.Event):
        total: int
        succeeded: int
        failed: int
        skipped: int
        discrepancy: str | None

    def complete(self, summaries: list[ChunkSummary]) -> None:
        """Close the action from every chunk's summary, recording any count mismatch."""
        if self.is_finished:
            raise ActionAlreadyFinishedError(f"action {self.id} is {self.status}")
        if self.total is None or self.chunk_count is None:
            raise InputNotQueuedError(f"action {self.id} has not queued all its input")
        succeeded = sum(s.succeeded for s in summaries)
        failed = sum(s.failed for s in summaries)
        skipped = sum(s.skipped for s in summaries)
        problems = []
        if len(summaries) != self.chunk_count:
            problems.append(f"{len(summaries)} chunk summaries for {self.chunk_count} chunks")
        if succeeded + failed + skipped != self.total:
            problems.append(
                f"succeeded {succeeded} + failed {failed} + skipped {skipped}"
                f" = {succeeded + failed + skipped} != total {self.total}"
            )
        self.trigger_event(
            self.Completed,
            total=self.total,
            succeeded=succeeded,
            failed=failed,
            skipped=skipped,
            discrepancy="; ".join(problems) or None,
        )

    @event(Completed)
    def _completed(self, total: int, succeeded: int, failed: int, skipped: int, discrepancy: str | None) -> None:
        self.completed = True


class ChunkSummary:
    """What a chunk's ``ChunkProcessed`` event says, as the completion check reads it."""

    __slots__ = ("chunk_no", "failed", "skipped", "succeeded")

    def __init__(self, chunk_no: int, succeeded: int, failed: int, skipped: int) -> None:
        self.chunk_no = chunk_no
        self.succeeded = succeeded
        self.failed = failed
        self.skipped = skipped


class BulkChunk(Aggregate):
    """One chunk of an action's input and, once processed, one outcome per record.

    Outcome events are built by ``record_outcomes`` directly (no aggregate load, no
    per-event ``trigger_event``): a chunk is processed once, all its outcomes are
    known together, and the deterministic versions make a second save collide.
    """

    class ChunkQueued(Aggregate.Created):
        action_id: UUID
        chunk_no: int
        first_row: int
        records: list[dict[str, Any]]

    @event(ChunkQueued)
    def __init__(self, action_id: UUID, chunk_no: int, first_row: int, records: list[dict[str, Any]]) -> None:
        self.action_id = action_id
        self.chunk_no = chunk_no
        self.first_row = first_row
        self.records = records

    @classmethod
    def queue(cls, action_id: UUID, chunk_no: int, first_row: int, records: list[dict[str, Any]]) -> BulkChunk:
        return cls._create(
            cls.ChunkQueued,
            id=chunk_id(action_id, chunk_no),
            action_id=action_id,
            chunk_no=chunk_no,
            first_row=first_row,
            records=records,
        )

    @dataclass(frozen=True)
    class RecordSucceeded(DomainEvent):
        """v2 adds what the record did to its entity: ``changes`` (field -> [before,
        after], before None for an insert) and the entity's version after it, which
        orders each entity's history exactly. Events of v1 say nothing of either.
        v3 adds ``links``: for each field that names another entity (domain.links), the
        entity it names and whether it was found, created, or not found; None where the
        record named none (as every event before v3)."""

        class_version = 3
        action_id: UUID
        chunk_no: int
        row: int
        line: int | None
        entity_id: str
        op: str  # created | updated | unchanged
        changes: dict[str, list[Any]] | None
        entity_version: int | None
        links: dict[str, dict[str, Any]] | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["changes"] = None  # recorded before changes were: unknown, not "none"
            state["entity_version"] = None

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state["links"] = None

    @dataclass(frozen=True)
    class LinkedEntityCreated(DomainEvent):
        """An entity a record of the chunk created because it linked to it and none
        existed (a contact's company, with ``link_companies``): its own change in the
        audit trail, as an insert's outcome is. Not an outcome: the record's outcome
        (``RecordSucceeded.links``) names it. Stored with the chunk's outcomes, after
        them and before the summary, in the same transaction."""

        action_id: UUID
        chunk_no: int
        row: int
        line: int | None
        entity_type: str
        entity_id: str
        op: str  # created
        changes: dict[str, list[Any]]
        entity_version: int

    @dataclass(frozen=True)
    class RecordFailed(DomainEvent):
        action_id: UUID
        chunk_no: int
        row: int
        line: int | None
        errors: list[dict[str, str]]

    @dataclass(frozen=True)
    class RecordSkipped(DomainEvent):
        action_id: UUID
        chunk_no: int
        row: int
        line: int | None
        reason: str
        duplicate_of: str | None
        duplicate_of_row: int | None

    @dataclass(frozen=True)
    class ChunkProcessed(DomainEvent):
        action_id: UUID
        chunk_no: int
        succeeded: int
        failed: int
        skipped: int


OutcomeEvent = BulkChunk.RecordSucceeded | BulkChunk.RecordFailed | BulkChunk.RecordSkipped
_Outcome = TypeVar("_Outcome", BulkChunk.RecordSucceeded, BulkChunk.RecordFailed, BulkChunk.RecordSkipped)


def _outcome_event(cls: type[_Outcome], state: dict[str, Any]) -> _Outcome:
    """An outcome event from its complete field values, without the frozen dataclass's
    ``__init__`` (one ``object.__setattr__`` per field: 0.25 s of every 100,000 records).
    The mapper builds decoded events the same way; ``state`` holds every field."""
    built = object.__new__(cls)
    object.__setattr__(built, "__dict__", state)
    return built


def record_outcomes(
    action_id: UUID,
    chunk_no: int,
    results: list[RecordResult],
    timestamp: datetime,
) -> list[DomainEvent]:
    """One outcome event per record of the chunk, in input order, then the entities
    records created for their links, then the summary."""
    originator = chunk_id(action_id, chunk_no)
    events: list[DomainEvent] = []
    counts = {Outcome.SUCCEEDED: 0, Outcome.FAILED: 0, Outcome.SKIPPED: 0}
    succeeded, failed, skipped = BulkChunk.RecordSucceeded, BulkChunk.RecordFailed, BulkChunk.RecordSkipped
    for index, result in enumerate(results):
        counts[result.outcome] += 1
        state: dict[str, Any] = {
            "originator_id": originator,
            "originator_version": outcome_version(index),
            "timestamp": timestamp,
            "action_id": action_id,
            "chunk_no": chunk_no,
            "row": result.row,
            "line": result.line,
        }
        event: DomainEvent
        if result.outcome is Outcome.SUCCEEDED:
            state["entity_id"] = result.entity_id or ""
            state["op"] = result.op or ""
            state["changes"] = result.changes
            state["entity_version"] = result.version
            state["links"] = result.links
            event = _outcome_event(succeeded, state)
        elif result.outcome is Outcome.FAILED:
            state["errors"] = result.errors
            event = _outcome_event(failed, state)
        else:
            state["reason"] = result.reason or ""
            state["duplicate_of"] = result.entity_id
            state["duplicate_of_row"] = result.duplicate_of_row
            event = _outcome_event(skipped, state)
        events.append(event)
    created = [(result, made) for result in results for made in result.created]
    for index, (result, made) in enumerate(created, start=len(results)):
        events.append(
            BulkChunk.LinkedEntityCreated(
                originator_id=originator,
                originator_version=outcome_version(index),
                timestamp=timestamp,
                action_id=action_id,
                chunk_no=chunk_no,
                row=result.row,
                line=result.line,
                entity_type=made.entity_type,
                entity_id=made.entity_id,
                op="created",
                changes={name: [None, value] for name, value in made.values.items()},
                entity_version=1,
            )
        )
    events.append(
        BulkChunk.ChunkProcessed(
            originator_id=originator,
            originator_version=outcome_version(len(results) + len(created)),
            timestamp=timestamp,
            action_id=action_id,
            chunk_no=chunk_no,
            succeeded=counts[Outcome.SUCCEEDED],
            failed=counts[Outcome.FAILED],
            skipped=counts[Outcome.SKIPPED],
        )
    )
    return events


@dataclass(frozen=True, slots=True)
class CreatedEntity:
    """An entity a record created for its link, as its ``LinkedEntityCreated`` says."""

    entity_type: str
    entity_id: str
    values: dict[str, Any]


class RecordResult:
    """The decision for one input record, before it becomes an event."""

    __slots__ = (
        "changes",
        "created",
        "duplicate_of_row",
        "entity_id",
        "errors",
        "line",
        "links",
        "op",
        "outcome",
        "reason",
        "row",
        "version",
    )

    def __init__(
        self,
        row: int,
        line: int | None,
        outcome: Outcome,
        *,
        entity_id: str | None = None,
        op: str | None = None,
        errors: list[dict[str, str]] | None = None,
        reason: str | None = None,
        duplicate_of_row: int | None = None,
        changes: dict[str, list[Any]] | None = None,
        version: int | None = None,
    ) -> None:
        self.row = row
        self.line = line
        self.outcome = outcome
        self.entity_id = entity_id
        self.op = op
        self.errors = errors or []
        self.reason = reason
        self.duplicate_of_row = duplicate_of_row
        self.changes = changes
        self.version = version
        # Set by linking (application.links): what the record's link fields name, and
        # the entities it created for them.
        self.links: dict[str, dict[str, Any]] | None = None
        self.created: list[CreatedEntity] = []

    def __repr__(self) -> str:
        return f"RecordResult(row={self.row}, outcome={self.outcome}, reason={self.reason})"
