"""Replay and verify: rebuild read models from the event store and compare.

Replay never goes through the transport (acked messages are gone); it runs the same
projection function directly over the notification log.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from application.event_store import BulkActionLog
from application.ports import ActionFilter, ActionView, LogLine, ReadModelStore
from domain.bulk_action import ActionStatus
from projections.projector import Projector


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
    after = 0
    while page := store.logs(action_id, after_row=after, limit=5000):
        yield from page
        after = page[-1].row


def differences(live: ReadModelStore, rebuilt: ReadModelStore, action_id: str | None = None) -> list[str]:
    """What differs between live and rebuilt read models, and broken count invariants."""
    found: list[str] = []
    rebuilt_views = {v.action_id: v for v in all_actions(rebuilt, action_id)}
    live_views = {v.action_id: v for v in all_actions(live, action_id)}
    for missing in sorted(rebuilt_views.keys() - live_views.keys()):
        found.append(f"action {missing}: in the events but not in the live read model")
    for extra in sorted(live_views.keys() - rebuilt_views.keys()):
        found.append(f"action {extra}: in the live read model but not in the events")
    for key in sorted(rebuilt_views.keys() & live_views.keys()):
        found += _compare_action(live, rebuilt, live_views[key], rebuilt_views[key])
    return found


def _compare_action(live: ReadModelStore, rebuilt: ReadModelStore, view: ActionView, truth: ActionView) -> list[str]:
    found = []
    prefix = f"action {truth.action_id}"
    for name in ActionView.__dataclass_fields__:
        if getattr(view, name) != getattr(truth, name):
            found.append(
                f"{prefix}: {name} is {getattr(view, name)!r} live but {getattr(truth, name)!r} from the events"
            )
    counts: Counter[str] = Counter()
    live_lines = all_logs(live, truth.action_id)
    for expected in all_logs(rebuilt, truth.action_id):
        counts[expected.outcome] += 1
        actual = next(live_lines, None)
        if actual != expected:
            found.append(f"{prefix}: log line for row {expected.row} differs: live {actual!r}, events {expected!r}")
            break
    else:
        extra = next(live_lines, None)
        if extra is not None:
            found.append(f"{prefix}: live log has a line for row {extra.row} that the events do not")
    for outcome in ("succeeded", "failed", "skipped"):
        if counts[outcome] != getattr(truth, outcome):
            found.append(
                f"{prefix}: {counts[outcome]} {outcome} log lines but the count says {getattr(truth, outcome)}"
            )
    if truth.status == ActionStatus.COMPLETED and truth.processed != truth.total:
        found.append(f"{prefix}: completed with {truth.processed} outcomes for {truth.total} records")
    if truth.discrepancy:
        found.append(f"{prefix}: completion recorded a discrepancy: {truth.discrepancy}")
    return found
