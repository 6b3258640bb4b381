"""Complete or cancel an action.

Completion reads every chunk's ``ChunkProcessed`` summary from the event store, not
the read model, and the domain records any mismatch with the total in ``Completed``.
"""

from __future__ import annotations

from uuid import UUID

from application.event_store import ActionChangedError, BulkActionLog
from application.ports.entities import EntityStore
from application.ports.quotas import QuotaGate
from application.ports.read_models import ActionView
from application.queries import ActionQueries
from domain.bulk_action import ActionStatus, BulkAction, ChunkSummary


class ActionCompleter:
    def __init__(self, events: BulkActionLog, quota: QuotaGate, entities: EntityStore) -> None:
        self.events = events
        self.quota = quota
        self.entities = entities

    def unfinished_chunks(self, action_id: UUID) -> list[int] | None:
        """Chunks with no outcomes yet; None while the input is still being stored."""
        action = self.events.get_action(action_id)
        if action.chunk_count is None:
            return None
        return [n for n in range(action.chunk_count) if self.events.chunk_summary(action_id, n) is None]

    def complete_if_done(self, action_id: UUID) -> bool:
        action = self.events.get_action(action_id)
        if action.is_finished or action.chunk_count is None:
            return False
        summaries: list[ChunkSummary] = []
        for chunk_no in range(action.chunk_count):
            summary = self.events.chunk_summary(action_id, chunk_no)
            if summary is None:
                return False
            summaries.append(summary)
        action.complete(summaries)
        try:
            self.events.save_action(action)
        except ActionChangedError:
            return False  # another projector or worker completed it first
        self._release(action)
        return True

    def _release(self, action: BulkAction) -> None:
        """What a finished action held: its quota, and any change of it the entity store
        still keeps for a chunk run again (none is run again now)."""
        self.quota.release(action.account_id, str(action.id))
        self.entities.forget_changes(action.account_id, str(action.id))

    def cancel(self, action_id: UUID, reason: str = "cancelled by user") -> None:
        """Cancel; ``ActionAlreadyFinishedError`` if it completed (or was cancelled)
        first, even if that happened between reading and saving."""
        while True:
            action = self.events.get_action(action_id)
            action.cancel(reason)  # refuses a finished action
            try:
                self.events.save_action(action)
                break
            except ActionChangedError:
                continue  # completed or cancelled just now: the next read says which
        self._release(action)


class Cancellation:
    """Cancel an account's action, for the CLI and the HTTP API alike."""

    def __init__(self, completer: ActionCompleter, queries: ActionQueries) -> None:
        self.completer = completer
        self.queries = queries

    def cancel(self, account_id: str | None, action_id: UUID) -> ActionView:
        """Cancel the action (``ActionNotFoundError`` if it is another account's; None:
        any account's). Chunks not yet processed never are. Returns the counts so far,
        with the status the read model will show once the projector has seen it."""
        self.queries.owned_action(account_id, action_id)
        self.completer.cancel(action_id)
        view = self.queries.owned_view(account_id, action_id)
        view.status = ActionStatus.CANCELLED.value
        return view
