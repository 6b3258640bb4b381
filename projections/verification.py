"""Verify: rebuild the read models from the events aside and compare them with the live ones.

Every action view field and every log line is compared, and each action's live log is
counted per outcome over its whole length against what the events give. The two logs
are read in row order and merged by row, a page at a time: memory stays flat for an
action of a million lines, and a deleted or an extra line is that one difference, not
a shift that makes every later line differ.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, fields

from application.event_store import BulkActionLog
from application.ports.entities import EntityStore
from application.ports.read_models import ActionView, LogLine, ReadModelStore
from domain.bulk_action import ActionStatus
from projections.actions import PROJECTION_NAME
from projections.entity_verification import compare_entities, compare_entity_history
from projections.rebuild import all_actions, all_logs, rebuild
from projections.report import Difference, VerificationReport, Where

OUTCOMES = ("succeeded", "failed", "skipped")
_VIEW_FIELDS = tuple(f.name for f in fields(ActionView) if f.name != "action_id")
_LOG_FIELDS = tuple(f.name for f in fields(LogLine) if f.name not in ("action_id", "row"))


class UnknownActionError(Exception):
    """Verify was asked about an action that neither the events nor the read models hold."""


def verify_read_models(
    events: BulkActionLog,
    live: ReadModelStore,
    aside: AbstractContextManager[ReadModelStore],
    report: VerificationReport,
    action_id: str | None = None,
    entities: EntityStore | None = None,
) -> VerificationReport:
    """Rebuild into ``aside`` (an empty store, discarded when the block ends) and add
    every difference from the live read models to ``report``; with ``entities``, also
    every difference between the entity store and what the events give."""
    with aside as truth:
        rebuild(events, truth)
        if action_id is not None and truth.get_action(action_id) is None and live.get_action(action_id) is None:
            raise UnknownActionError(f"no action {action_id}")
        live_at, head = live.position(PROJECTION_NAME), truth.position(PROJECTION_NAME)
        if live_at < head:
            report.add(Difference("projector_behind", (), "position", live_at, head))
        compare_read_models(live, truth, report, action_id)
        if action_id is None:
            compare_entity_history(live, truth, report)
        if entities is not None:
            compare_entities(events, truth, entities, report)
    return report


def compare_read_models(
    live: ReadModelStore, truth: ReadModelStore, report: VerificationReport, action_id: str | None = None
) -> None:
    """Add to ``report`` what differs between the live read models and ``truth``
    (rebuilt from the events), action by action."""
    report.checked.update(actions=0, lines=0)
    for expected in all_actions(truth, action_id):
        report.checked["actions"] += 1
        view = live.get_action(expected.action_id)
        if view is None:
            report.add(Difference("action_missing", _at(expected.action_id), events=asdict(expected)))
            continue
        _compare_action(live, truth, view, expected, report)
    for view in all_actions(live, action_id):
        if truth.get_action(view.action_id) is None:
            report.checked["actions"] += 1
            report.add(Difference("action_extra", _at(view.action_id), live=asdict(view)))


def _at(action_id: str, *record: tuple[str, str | int]) -> Where:
    return (("action_id", action_id), *record)


def _compare_action(
    live: ReadModelStore, truth: ReadModelStore, view: ActionView, expected: ActionView, report: VerificationReport
) -> None:
    where = _at(expected.action_id)
    for name in _VIEW_FIELDS:
        if getattr(view, name) != getattr(expected, name):
            report.add(Difference("action_field", where, name, getattr(view, name), getattr(expected, name)))
    live_lines = _compare_logs(live, truth, expected.action_id, report)
    for outcome in OUTCOMES:
        if live_lines[outcome] != getattr(expected, outcome):
            report.add(Difference("outcome_lines", where, outcome, live_lines[outcome], getattr(expected, outcome)))
    _check_completion(expected, report)


def _compare_logs(
    live: ReadModelStore, truth: ReadModelStore, action_id: str, report: VerificationReport
) -> Counter[str]:
    """Add every differing log line to ``report``; return the live log's lines per outcome."""
    live_lines: Counter[str] = Counter()
    checked = 0
    for line, expected in _by_row(all_logs(live, action_id), all_logs(truth, action_id)):
        checked += 1
        if line is not None:
            live_lines[line.outcome] += 1
        if line != expected:
            _compare_line(action_id, line, expected, report)
    report.checked["lines"] += checked
    return live_lines


def _compare_line(action_id: str, line: LogLine | None, expected: LogLine | None, report: VerificationReport) -> None:
    if line is None:
        assert expected is not None
        report.add(Difference("log_line_missing", _at(action_id, ("row", expected.row)), events=asdict(expected)))
    elif expected is None:
        report.add(Difference("log_line_extra", _at(action_id, ("row", line.row)), live=asdict(line)))
    else:
        where = _at(action_id, ("row", line.row))
        for name in _LOG_FIELDS:
            if getattr(line, name) != getattr(expected, name):
                report.add(Difference("log_line", where, name, getattr(line, name), getattr(expected, name)))


def _by_row(live: Iterator[LogLine], truth: Iterator[LogLine]) -> Iterator[tuple[LogLine | None, LogLine | None]]:
    """Merge two logs read in row order: (live line, line from the events) per row,
    with None on the side that has no line for that row."""
    line, expected = next(live, None), next(truth, None)
    while line is not None or expected is not None:
        if expected is None or (line is not None and line.row < expected.row):
            yield line, None
            line = next(live, None)
        elif line is None or expected.row < line.row:
            yield None, expected
            expected = next(truth, None)
        else:
            yield line, expected
            line, expected = next(live, None), next(truth, None)


def _check_completion(expected: ActionView, report: VerificationReport) -> None:
    """What the events themselves must say of a completed action."""
    where = _at(expected.action_id)
    if expected.status == ActionStatus.COMPLETED and expected.processed != expected.total:
        figures = {"processed": expected.processed, "total": expected.total}
        report.add(Difference("completed_short", where, events=figures))
    if expected.discrepancy:
        report.add(Difference("completion_discrepancy", where, events=expected.discrepancy))
