"""Follows the event store's notification log and keeps the read models current.

After each batch it asks the completer to close actions whose every chunk is in (the
completer checks the event store itself, so a stale read model cannot complete early).
An action stays "to complete" until that has been asked without a fault: a store
that fails between a batch and its completion (the batch is stored, so the next step
reads on from after it), or a projector killed there, must not leave it PROCESSING
forever. A projector's first step therefore also looks at every PROCESSING action.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from uuid import UUID

from application.event_store import BulkActionLog, position_after
from application.faults import FaultPolicy
from application.ports.metrics import Metrics
from application.ports.read_models import ActionFilter, ReadModelStore
from domain.bulk_action import ActionStatus
from projections.actions import PROJECTED_KINDS, PROJECTION_NAME, project
from projections.outcome_tally import tally

log = logging.getLogger(__name__)


class Projector:
    def __init__(
        self,
        events: BulkActionLog,
        store: ReadModelStore,
        complete_if_done: Callable[[UUID], bool] | None = None,
        name: str = PROJECTION_NAME,
        faults: FaultPolicy | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.events = events
        self.store = store
        self.complete_if_done = complete_if_done
        self.name = name
        self.faults = faults
        self.metrics = metrics  # None: nothing counted (and no tally computed)
        # Actions to ask the completer about; None until the first step has looked at
        # every PROCESSING action (what a previous projector may have left).
        self._to_complete: set[str] | None = None

    def run_once(self, page: int = 1000) -> int:
        self._complete_waiting()
        position = self.store.position(self.name)
        head = self.events.head()
        if head <= position:
            return 0
        # Only the kinds it projects are read: a ChunkQueued (a chunk's whole input) is
        # not decoded for nothing.
        events = self.events.follow(position, page, kinds=PROJECTED_KINDS, until=head)
        changes = project(events, self.store.get_action)
        moved_to = position_after(events, page, head)
        if not self.store.apply(self.name, moved_to, changes, expected_position=position):
            return len(events)  # another projector moved on meanwhile: read again from there
        if self.metrics is not None:  # the batch was taken, so once: counted once
            self.metrics.outcomes_projected(tally(changes, self.store.get_action))
        if self.complete_if_done is not None and self._to_complete is not None:
            self._to_complete.update(
                action_id for action_id, delta in changes.deltas.items() if delta.chunks_done or delta.total is not None
            )
            self._complete_waiting()
        return len(events)

    def _complete_waiting(self) -> None:
        """Ask about each action still to complete; one that raises stays for the next step."""
        if self.complete_if_done is None:
            return
        if self._to_complete is None:
            self._to_complete = self._processing_actions()
        for action_id in sorted(self._to_complete):
            self._maybe_complete(action_id)
            self._to_complete.discard(action_id)

    def _processing_actions(self) -> set[str]:
        found: set[str] = set()
        before = None
        only_processing = ActionFilter(status=ActionStatus.PROCESSING.value)
        while page := self.store.list_actions(only_processing, before=before, limit=500):
            found.update(view.action_id for view in page)
            before = (page[-1].created_at, page[-1].action_id)
        return found

    def _maybe_complete(self, action_id: str) -> None:
        view = self.store.get_action(action_id)
        if view is None or view.status != ActionStatus.PROCESSING or view.chunk_count is None:
            return
        if view.chunks_done >= view.chunk_count and self.complete_if_done is not None:
            self.complete_if_done(UUID(action_id))

    def catch_up(self) -> int:
        done = 0
        while (n := self.run_once()) > 0:
            done += n
        return done

    def run(self, stop: threading.Event, poll_seconds: float = 0.05) -> None:
        """Follow the log until stopped, waiting out infrastructure faults (a live
        projector needs ``faults``; a replay runs ``catch_up`` and stops on any error)."""
        assert self.faults is not None, "a live projector needs a fault policy"
        self.faults.run_steps(f"projector {self.name}", self.run_once, stop, poll_seconds)
