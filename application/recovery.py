"""Recovery: what an interrupted action still needs, and giving it that.

An action can be interrupted at two places. While its input was being stored as
chunks (``total`` unknown): the rest is stored again from the same file, which must
hash the same (``Submission.store_input`` skips the chunks already stored). After
that, while chunks were processed: the transport's messages may be gone with the
process (the in-process queue) or purged, so every chunk without outcomes is
published again; a chunk done meanwhile is recognised and skipped by the worker.
The CLI's ``resume`` and a restarted server ask the same questions here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from application.completion import ActionCompleter
from application.event_store import BulkActionLog
from application.ports.inputs import ReadOptions
from application.ports.messaging import MessageTransport
from application.ports.read_models import ActionFilter, ReadModelStore
from application.queries import ActionQueries
from application.relay import CHUNKS_QUEUE, chunk_message
from application.submission import PendingInput, SubmitCommand
from domain.bulk_action import ActionStatus, BulkAction

# Inputs that can be read again to store the rest: a file (it must hash the same), and
# a revert's input (its original's outcome events).
_READ_AGAIN = ("file", "revert")


class InputGoneError(Exception):
    """The action was interrupted while its input was being stored, and that input is
    not a file that can be read again."""


@dataclass(frozen=True, slots=True)
class Restart:
    """What one unfinished action needs after a restart: the rest of its input stored
    (``pending``), or nothing but its chunks published again; ``input_gone`` when its
    input is needed and cannot be had (it can only be cancelled)."""

    action_id: UUID
    pending: PendingInput | None
    input_gone: bool


class ActionRecovery:
    def __init__(
        self,
        events: BulkActionLog,
        read_models: ReadModelStore,
        completer: ActionCompleter,
        transport: MessageTransport,
        catch_up: Callable[[], int],
    ) -> None:
        self.events = events
        self.completer = completer
        self.transport = transport
        self.queries = ActionQueries(read_models, events)
        # Brings the read models up to the event log (without completing actions), so
        # that the listing of unfinished actions is current.
        self.catch_up = catch_up

    def pending_input(self, action_id: UUID) -> PendingInput | None:
        """The input the action still has to store, None if it is all stored;
        ``InputGoneError`` if it was neither a file nor a revert's original outcomes."""
        action = self.events.get_action(action_id)
        if action.total is not None:
            return None
        if action.source.get("kind") not in _READ_AGAIN:
            raise InputGoneError(
                f"action {action_id} was interrupted while its input was being stored, and that input is gone"
            )
        return _pending(action)

    def redispatch_unfinished(self, action_id: UUID) -> None:
        """Publish again every chunk that has no outcomes yet, or complete the action if
        every chunk has them (nothing while its input is still being stored)."""
        unfinished = self.completer.unfinished_chunks(action_id)
        if unfinished:
            self.transport.publish(CHUNKS_QUEUE, [chunk_message(str(action_id), n) for n in unfinished])
        elif unfinished == []:
            self.completer.complete_if_done(action_id)

    def restarts(self, created_before: str) -> Iterator[Restart]:
        """Every unfinished action created before ``created_before`` (a restarted
        process's start: newer ones belong to whoever took them), with what it needs."""
        self.catch_up()
        for status in (ActionStatus.QUEUEING, ActionStatus.PROCESSING):
            for view in self.queries.actions(ActionFilter(status=status.value, created_to=created_before)):
                action = self.events.get_action(UUID(view.action_id))
                if not action.is_finished:
                    yield _restart(action)

    def inputs_needed(self) -> Iterator[Path]:
        """The input files of every action whose input is not stored yet, whoever took it."""
        self.catch_up()
        for view in self.queries.actions(ActionFilter(status=ActionStatus.QUEUEING.value)):
            action = self.events.get_action(UUID(view.action_id))
            if action.total is None and action.source.get("kind") == "file":
                yield Path(action.source["path"])

    def spooled_copy_to_remove(self, action_id: UUID, spool: Path) -> Path | None:
        """A copy of a stream kept in ``spool`` (a pipe's input, so that resume can read
        it again) is needed until the action ends: then it is the file to remove."""
        action = self.events.get_action(action_id)
        path = Path(action.source.get("path", ""))
        if action.is_finished and path.parent == spool.resolve():
            return path
        return None


def _pending(action: BulkAction) -> PendingInput:
    read = ReadOptions.from_stored(action.source.get("read"))
    command = SubmitCommand(
        action.account_id,
        action.entity_type,
        action.action_type,
        action.match_by,
        action.chunk_size,
        dry_run=action.dry_run,
        read=read,
        link_companies=action.link_companies,
    )
    if action.reverts is not None:  # its input is its original's outcomes, in the event store
        return PendingInput(action.id, command, None, None)
    retry = action.retry_of is not None
    return PendingInput(action.id, command, action.source["path"], action.source["format"], retry)


def _restart(action: BulkAction) -> Restart:
    if action.total is not None:
        return Restart(action.id, None, input_gone=False)
    info = action.source
    if info.get("kind") == "revert":
        return Restart(action.id, _pending(action), input_gone=False)
    if info.get("kind") != "file" or not Path(info.get("path", "")).exists():
        return Restart(action.id, None, input_gone=True)
    return Restart(action.id, _pending(action), input_gone=False)
