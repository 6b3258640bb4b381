"""Follows the event store's notification log and keeps the read models current.

After each batch it asks the completer to close actions whose every chunk is in (the
completer checks the event store itself, so a stale read model cannot complete early).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from uuid import UUID

from application.event_store import BulkActionLog
from application.faults import FaultPolicy
from application.ports.read_models import ReadModelStore
from domain.bulk_action import ActionStatus
from projections.actions import PROJECTION_NAME, project

log = logging.getLogger(__name__)


class Projector:
    def __init__(
        self,
        events: BulkActionLog,
        store: ReadModelStore,
        complete_if_done: Callable[[UUID], bool] | None = None,
        name: str = PROJECTION_NAME,
        faults: FaultPolicy | None = None,
    ) -> None:
        self.events = events
        self.store = store
        self.complete_if_done = complete_if_done
        self.name = name
        self.faults = faults

    def run_once(self, page: int = 1000) -> int:
        position = self.store.position(self.name)
        events = self.events.follow(position, page)
        if not events:
            return 0
        changes = project(events, self.store.get_action)
        if not self.store.apply(self.name, events[-1][0], changes, expected_position=position):
            return len(events)  # another projector moved on meanwhile: read again from there
        if self.complete_if_done is not None:
            for action_id, delta in changes.deltas.items():
                if delta.chunks_done or delta.total is not None:
                    self._maybe_complete(action_id)
        return len(events)

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
