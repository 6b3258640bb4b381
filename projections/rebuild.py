"""Replay: rebuild read models from the event store, and read them back whole.

Replay never goes through the transport (acked messages are gone); it runs the same
projection function directly over the notification log.
"""

from __future__ import annotations

from collections.abc import Iterator

from application.event_store import BulkActionLog
from application.ports.read_models import ActionFilter, ActionView, LogLine, ReadModelStore
from projections.projector import Projector

# Log lines are read from below any row a record can have, so that a line someone put
# at row 0 (or below) is seen too.
_BEFORE_EVERY_ROW = -(2**63)
_LOG_PAGE = 5000


def rebuild(events: BulkActionLog, target: ReadModelStore) -> int:
    """Project every event into ``target`` (empty), without completing anything."""
    return Projector(events, target, complete_if_done=None).catch_up()


def all_actions(store: ReadModelStore, action_id: str | None = None) -> Iterator[ActionView]:
    if action_id is not None:
        found = store.get_action(action_id)
        if found is not None:
            yield found
        return
    before = None
    while page := store.list_actions(ActionFilter(), before=before, limit=500):
        yield from page
        before = (page[-1].created_at, page[-1].action_id)


def all_logs(store: ReadModelStore, action_id: str) -> Iterator[LogLine]:
    """Every log line of an action in row order, a page at a time (flat memory)."""
    after = _BEFORE_EVERY_ROW
    while page := store.logs(action_id, after_row=after, limit=_LOG_PAGE):
        yield from page
        after = page[-1].row
