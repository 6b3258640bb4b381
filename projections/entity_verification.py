"""Verify the audit trail and the entity store against the events.

- The entity history read model, live against rebuilt: merged by position, a page at
  a time, so a missing or an extra line is that one difference.
- ``verify --entities``: every entity's changes, folded from the events (the rebuilt
  history, in each entity's version order), against what the entity store holds now:
  an entity edited outside the platform, missing, or extra is reported with its key,
  the stored value and the value the events give. Both sides are read in entity id
  order and merged, so memory stays flat over millions of entities.

Differences are grouped by entity type (a handful of groups), each entity a record of
it, so the report's totals stay small however many entities differ.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from application.audit import EntityHistoryLine, history_lines
from application.event_store import BulkActionLog
from application.ports.entities import EntityRow, EntityStore
from application.ports.read_models import ActionView, EntityHistoryEntry, ReadModelStore
from projections.report import Difference, VerificationReport, Where

_PAGE = 5000
_INDEX: tuple[str, str] = ("index", "entity history")  # one group for the whole index


def _at(entity_type: str, entity_id: str, *more: tuple[str, str | int]) -> Where:
    return (("entity_type", entity_type), ("entity_id", entity_id), *more)


# --------------------------------------------------------------------------- history


def compare_entity_history(live: ReadModelStore, truth: ReadModelStore, report: VerificationReport) -> None:
    """Add every difference between the live and the rebuilt index of the audit trail."""
    report.checked.update(history_entries=0)
    for entry, expected in _by_key(_entries(live), _entries(truth)):
        report.checked["history_entries"] += 1
        # An entry is its whole key: one on each side is the same entry.
        if entry is None:
            assert expected is not None
            where: Where = (_INDEX, ("entity_id", expected.entity_id), ("position", expected.position))
            report.add(Difference("history_entry_missing", where))
        elif expected is None:
            report.add(
                Difference(
                    "history_entry_extra", (_INDEX, ("entity_id", entry.entity_id), ("position", entry.position))
                )
            )


def _entries(store: ReadModelStore) -> Iterator[EntityHistoryEntry]:
    """The whole index in (entity id, position) order: the order of its primary key in
    every store (read by position, the SQLite store sorted the whole table for every
    page: a 3M-entry verify ran for minutes)."""
    after: tuple[str, int] | None = None
    while page := store.entity_history_by_entity(after, _PAGE):
        yield from page
        after = (page[-1].entity_id, page[-1].position)


def _key(entry: EntityHistoryEntry) -> tuple[str, int]:
    return entry.entity_id, entry.position


def _by_key(
    live: Iterator[EntityHistoryEntry], truth: Iterator[EntityHistoryEntry]
) -> Iterator[tuple[EntityHistoryEntry | None, EntityHistoryEntry | None]]:
    entry, expected = next(live, None), next(truth, None)
    while entry is not None or expected is not None:
        if expected is None or (entry is not None and _key(entry) < _key(expected)):
            yield entry, None
            entry = next(live, None)
        elif entry is None or _key(expected) < _key(entry):
            yield None, expected
            expected = next(truth, None)
        else:
            yield entry, expected
            entry, expected = next(live, None), next(truth, None)


# --------------------------------------------------------------------------- entities


@dataclass(frozen=True, slots=True)
class FoldedEntity:
    """What the events say an entity is now: its values, or gone (None); ``known``
    is False when some of its changes were recorded before changes were kept."""

    entity_id: str
    account_id: str
    entity_type: str
    values: dict[str, Any] | None
    known: bool


def fold(lines: list[EntityHistoryLine]) -> FoldedEntity:
    """An entity's changes applied in its version order (lines of v1 first)."""
    ordered = sorted(lines, key=lambda h: (h.version is not None, h.version or 0, h.position))
    values: dict[str, Any] | None = None
    known = True
    for line in ordered:
        if line.changes is None:
            known = False
            continue
        values = {} if values is None else values
        for name, (_, after) in line.changes.items():
            if after is None:
                values.pop(name, None)
            else:
                values[name] = after
        if line.op == "deleted":
            values = None
    first = ordered[0]
    return FoldedEntity(first.entity_id, first.account_id, first.entity_type, values, known)


def compare_entities(
    events: BulkActionLog, truth: ReadModelStore, entities: EntityStore, report: VerificationReport
) -> None:
    """Add every difference between the entity store and the events' account of it."""
    report.checked.update(entities=0, entities_not_checkable=0)
    for stored, folded in _by_entity(_rows(entities), _folded(events, truth)):
        report.checked["entities"] += 1
        if folded is not None and not folded.known:
            report.checked["entities_not_checkable"] += 1
            continue
        _compare_entity(stored, folded, report)


def _compare_entity(stored: EntityRow | None, folded: FoldedEntity | None, report: VerificationReport) -> None:
    expected = folded.values if folded is not None else None
    if stored is None:
        if folded is not None and expected is not None:
            report.add(Difference("entity_missing", _at(folded.entity_type, folded.entity_id), events=expected))
        return
    where = _at(stored.entity_type, stored.entity_id, ("key", stored.key))
    if expected is None:
        report.add(Difference("entity_extra", where, live=stored.values))
        return
    assert folded is not None
    if (stored.account_id, stored.entity_type) != (folded.account_id, folded.entity_type):
        owner = {"account_id": folded.account_id, "entity_type": folded.entity_type}
        report.add(Difference("entity_owner", where, live={"account_id": stored.account_id}, events=owner))
    for name in sorted(stored.values.keys() | expected.keys()):
        if stored.values.get(name) != expected.get(name):
            report.add(Difference("entity_field", where, name, stored.values.get(name), expected.get(name)))


def _rows(entities: EntityStore) -> Iterator[EntityRow]:
    after: str | None = None
    while page := entities.entities_page(after, _PAGE):
        yield from page
        after = page[-1].entity_id


def _folded(events: BulkActionLog, truth: ReadModelStore) -> Iterator[FoldedEntity]:
    """Each entity of the audit trail, folded, in entity id order: a page of the index
    at a time, its outcome events read from the log."""
    actions: dict[str, ActionView | None] = {}

    def action_of(action_id: str) -> ActionView | None:
        if action_id not in actions:
            actions[action_id] = truth.get_action(action_id)
        return actions[action_id]

    pending: list[EntityHistoryLine] = []
    after: tuple[str, int] | None = None
    while page := truth.entity_history_by_entity(after, _PAGE):
        lines = history_lines(events, action_of, [entry.position for entry in page])
        by_position = {line.position: line for line in lines}
        for entry in page:
            line = by_position.get(entry.position)
            if line is None:
                continue
            if pending and line.entity_id != pending[0].entity_id:
                yield fold(pending)
                pending = []
            pending.append(line)
        after = (page[-1].entity_id, page[-1].position)
    if pending:
        yield fold(pending)


def _by_entity(
    stored: Iterator[EntityRow], folded: Iterator[FoldedEntity]
) -> Iterator[tuple[EntityRow | None, FoldedEntity | None]]:
    row, entity = next(stored, None), next(folded, None)
    while row is not None or entity is not None:
        if entity is None or (row is not None and row.entity_id < entity.entity_id):
            yield row, None
            row = next(stored, None)
        elif row is None or entity.entity_id < row.entity_id:
            yield None, entity
            entity = next(folded, None)
        else:
            yield row, entity
            row, entity = next(stored, None), next(folded, None)
