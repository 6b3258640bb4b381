"""The event-sourced application: where BulkAction and BulkChunk streams are stored.

Persistence (SQLite, PostgreSQL) is chosen by the composition root through the
library's environment (``PERSISTENCE_MODULE`` and friends); this module never names
a database. It is also the seal around the eventsourcing library: the rest of the
code reads and follows the log through ``BulkActionLog``'s methods, and the library's
errors are translated here (``ActionNotFoundError``, ``ActionChangedError``), as the
library's ``bankaccounts`` example does with ``AccountNotFoundError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, cast, runtime_checkable
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import DomainEvent
from eventsourcing.persistence import IntegrityError, Notification, StoredEvent
from eventsourcing.utils import get_topic

from domain.bulk_action import BulkAction, BulkChunk, ChunkSummary, chunk_id, outcome_version


class ActionNotFoundError(LookupError):
    """No action with this id in the event store."""

    def __init__(self, action_id: UUID) -> None:
        super().__init__(f"no action {action_id}")
        self.action_id = action_id


class ActionChangedError(Exception):
    """The action's header was changed by someone else since it was read (a concurrent
    cancel or completion): read it again and decide again."""


@runtime_checkable
class _PeekingMapper(Protocol):
    """A mapper that can read a few leading values of a stored event without decoding
    it whole (``infrastructure.events.mapper.FastMapper``)."""

    def peek(self, stored_event: StoredEvent, names: tuple[str, ...]) -> dict[str, str | int] | None: ...


_CHUNK_QUEUED = get_topic(BulkChunk.ChunkQueued)
_CHUNK_PROCESSED = get_topic(BulkChunk.ChunkProcessed)


class BulkActionLog(Application):  # type: ignore[type-arg]
    name = "BulkActions"

    def create_action(self, action: BulkAction) -> bool:
        """Store a new action; False if an action with this id already exists."""
        try:
            self.save(action)
        except IntegrityError:
            return False
        return True

    def get_action(self, action_id: UUID) -> BulkAction:
        """The action's header; ``ActionNotFoundError`` if there is none."""
        try:
            return cast(BulkAction, self.repository.get(action_id))
        except AggregateNotFoundError:
            raise ActionNotFoundError(action_id) from None

    def save_action(self, action: BulkAction) -> None:
        """Store the action's new events; ``ActionChangedError`` if another writer
        stored events of the same version first."""
        try:
            self.save(action)
        except IntegrityError:
            raise ActionChangedError(f"action {action.id} was changed meanwhile") from None

    def save_together(self, *actions: BulkAction) -> None:
        """Store several actions' new events in one transaction (a revert and the link
        on its original); ``ActionChangedError`` if any was changed meanwhile."""
        try:
            self.save(*actions)
        except IntegrityError:
            raise ActionChangedError(f"one of actions {[str(a.id) for a in actions]} was changed meanwhile") from None

    def store_chunks(self, chunks: Sequence[BulkChunk]) -> None:
        """Store chunks in one transaction; chunks already stored (a resumed import)
        are left as they are."""
        per_chunk = [list(chunk.collect_events()) for chunk in chunks]
        try:
            self.events.put([event for events in per_chunk for event in events])
        except IntegrityError:
            for events in per_chunk:
                try:
                    self.events.put(events)
                except IntegrityError:
                    continue

    def record_outcomes(self, events: Sequence[DomainEvent]) -> bool:
        """Store a chunk's outcome events in one transaction.

        False means another delivery of the same chunk already stored them: the
        deterministic versions collide, so nothing is stored twice.
        """
        # Straight to the recorder: ``EventStore.put`` also wraps each stored event in a
        # ``Recording`` for the caller, 1000 objects per chunk nobody reads here.
        to_stored = self.mapper.to_stored_event
        try:
            self.recorder.insert_events([to_stored(event) for event in events])
        except IntegrityError:
            return False
        return True

    def chunk_queued(self, action_id: UUID, chunk_no: int) -> BulkChunk.ChunkQueued | None:
        found = self.events.get(chunk_id(action_id, chunk_no), lte=1)
        first = next(iter(found), None)
        return cast(BulkChunk.ChunkQueued | None, first)

    def chunk_events(self, action_id: UUID, chunk_no: int) -> list[DomainEvent]:
        return cast(list[DomainEvent], list(self.events.get(chunk_id(action_id, chunk_no))))

    def record_events(self, action_id: UUID, chunk_no: int, index: int) -> list[DomainEvent]:
        """The input event and the outcome of one record, by its index in the chunk."""
        originator = chunk_id(action_id, chunk_no)
        version = outcome_version(index)
        events: list[Any] = list(self.events.get(originator, lte=1))
        events += list(self.events.get(originator, gt=version - 1, lte=version))
        return cast(list[DomainEvent], events)

    def chunk_summary(self, action_id: UUID, chunk_no: int) -> ChunkSummary | None:
        # The topic is read first: the last event of a chunk not yet processed is its
        # ChunkQueued, a thousand input records not worth decoding to learn that.
        stored = self.recorder.select_events(chunk_id(action_id, chunk_no), desc=True, limit=1)
        if not stored or stored[0].topic != _CHUNK_PROCESSED:
            return None
        last = cast(BulkChunk.ChunkProcessed, self.mapper.to_domain_event(stored[0]))
        return ChunkSummary(chunk_no, last.succeeded, last.failed, last.skipped)

    def follow(
        self, after: int, limit: int, *, kinds: Sequence[type] = (), until: int | None = None
    ) -> list[tuple[int, Any]]:
        """The next events of the whole log after position ``after``, as (position,
        event), at most ``limit``, only of ``kinds`` if given, none past ``until``."""
        topics = [get_topic(kind) for kind in kinds]
        notes = self._notifications(after, limit, topics, until)
        to_event = self.mapper.to_domain_event
        return [(note.id, to_event(note)) for note in notes]

    def queued_chunks(self, after: int, limit: int, *, until: int) -> list[tuple[int, UUID, int]]:
        """The chunks queued after position ``after`` (at most ``limit``, none past
        ``until``) as (position, action id, chunk number): what the relay publishes,
        read without decoding each chunk's input where the mapper allows."""
        notes = self._notifications(after, limit, [_CHUNK_QUEUED], until)
        return [(note.id, *self._chunk_named(note)) for note in notes]

    def _chunk_named(self, note: Notification) -> tuple[UUID, int]:
        mapper: object = self.mapper
        if isinstance(mapper, _PeekingMapper):
            found = mapper.peek(note, ("action_id", "chunk_no"))
            if found is not None:
                return UUID(str(found["action_id"])), int(found["chunk_no"])
        queued = cast(BulkChunk.ChunkQueued, self.mapper.to_domain_event(note))
        return queued.action_id, queued.chunk_no

    def _notifications(self, after: int, limit: int, topics: Sequence[str], until: int | None) -> list[Notification]:
        found = self.recorder.select_notifications(after, limit, stop=until, topics=topics, inclusive_of_start=False)
        return list(found)

    def events_at(self, positions: Sequence[int]) -> list[tuple[int, Any]]:
        """The events at these positions of the log (what an index of positions names),
        in position order; a position that holds no event is left out."""
        found = []
        to_event = self.mapper.to_domain_event
        for first, last, wanted in _runs(sorted(set(positions))):
            # One read per run of nearby positions (the outcomes of one chunk sit side by
            # side): reading them one by one was most of `verify --entities`.
            for note in self.recorder.select_notifications(first, last - first + 1, stop=last):
                if note.id in wanted:
                    found.append((note.id, to_event(note)))
        return found

    def action_events(self, action_id: UUID) -> list[Any]:
        """The header stream of an action, in order (a handful of events)."""
        return list(self.events.get(action_id))

    def accounts_of_actions(self) -> dict[UUID, str]:
        """Every action's account, read from the ``Created`` events of the whole log."""
        accounts: dict[UUID, str] = {}
        after = 0
        while page := self.follow(after, 1000, kinds=[BulkAction.Created]):
            for _, created in page:
                accounts[created.originator_id] = created.account_id
            after = page[-1][0]
        return accounts

    def head(self) -> int:
        """The notification log's last position (0 when empty)."""
        return self.recorder.max_notification_id() or 0

    def ping(self) -> None:
        """Raise if the event store cannot be reached now (readiness checks)."""
        self.head()


def position_after(page: Sequence[tuple[Any, ...]], limit: int, head: int) -> int:
    """Where a follower of some kinds stands after reading ``page`` (position first in
    each item; at most ``limit``, none past ``head``, the head it read first): a short
    page means nothing else it follows is stored up to that head, so it moves there."""
    return int(page[-1][0]) if len(page) == limit else head


# Positions at most this far apart are read in one query, the events between them
# read and passed over (a chunk's input among them is one ~20 KB row).
_RUN_GAP = 64


def _runs(ordered: list[int]) -> list[tuple[int, int, set[int]]]:
    """``ordered`` positions grouped into runs whose neighbours are at most ``_RUN_GAP``
    apart: (first, last, the positions wanted in it)."""
    runs: list[tuple[int, int, set[int]]] = []
    for position in ordered:
        if runs and position - runs[-1][1] <= _RUN_GAP:
            first, _, wanted = runs[-1]
            wanted.add(position)
            runs[-1] = (first, position, wanted)
        else:
            runs.append((position, position, {position}))
    return runs
