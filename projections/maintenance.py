"""Replay and verify: the read models rebuilt from the event store.

Replay rebuilds every read model into a fresh set built aside and then puts it in
place of the live one. Verify rebuilds aside too, compares, and throws the rebuilt set
away (``projections.verification``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from application.event_store import BulkActionLog
from application.ports.entities import EntityStore
from application.ports.read_models import ReadModelSets, ReadModelStore
from projections.actions import READ_MODEL_VERSION
from projections.rebuild import rebuild
from projections.report import VerificationReport
from projections.verification import verify_read_models

REPLAY_SET = "rebuild"
VERIFY_SET = "verify"


class ReadModelMaintenance:
    def __init__(self, events: BulkActionLog, live: ReadModelStore, sets: ReadModelSets, entities: EntityStore) -> None:
        self.events = events
        self.live = live
        self.sets = sets
        self.entities = entities

    def replay(self) -> int:
        """Rebuild every read model from the events and make the result the live set
        (stop running imports and projectors first). Returns the events replayed."""
        self.sets.discard(REPLAY_SET)
        scratch = self.sets.open(REPLAY_SET)
        try:
            count = rebuild(self.events, scratch)
        finally:
            scratch.close()
        self.live.close()
        self.sets.promote(REPLAY_SET)
        return count

    def rebuild_if_outdated(self) -> int | None:
        """Replay read models written by an earlier release (``READ_MODEL_VERSION``):
        the events replayed, or None if they are current."""
        if self.live.schema_version() >= READ_MODEL_VERSION:
            return None
        return self.replay()

    def verify(
        self, report: VerificationReport, action_id: str | None = None, *, entities: bool = False
    ) -> VerificationReport:
        """Add to ``report`` every difference between the live read models (of one
        action, or of all) and the read models the events give; with ``entities``,
        between the entity store and the events too."""
        checked = self.entities if entities else None
        return verify_read_models(self.events, self.live, self._aside(VERIFY_SET), report, action_id, checked)

    @contextmanager
    def _aside(self, label: str) -> Iterator[ReadModelStore]:
        """An empty set of read models for the length of a block, then gone."""
        self.sets.discard(label)
        store = self.sets.open(label)
        try:
            yield store
        finally:
            store.close()
            self.sets.discard(label)
