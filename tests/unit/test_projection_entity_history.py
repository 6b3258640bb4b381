"""The actions projection indexes each outcome that changed an entity under that entity,
and notes each unique value an entity gives up (removed, or changed to another)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from domain.bulk_action import BulkAction, Outcome, RecordResult, record_outcomes
from projections.actions import project

pytestmark = pytest.mark.unit


def _succeeded(row: int, entity_id: str, op: str, changes: dict[str, list[str | None]]) -> RecordResult:
    return RecordResult(row, row + 1, Outcome.SUCCEEDED, entity_id=entity_id, op=op, changes=changes, version=2)


def test_succeeded_outcomes_are_indexed_and_values_given_up_are_noted_under_the_actions_account() -> None:
    action = BulkAction.submit(uuid.uuid4(), "acme", "contact", "update", None, {}, 10, 4, {"kind": "cli"})
    results = [
        _succeeded(1, "e1", "updated", {"email": ["a@x", "b@x"]}),
        _succeeded(2, "e2", "created", {"email": [None, "c@x"]}),
        _succeeded(3, "e3", "deleted", {"email": ["d@x", None]}),
        RecordResult(4, 5, Outcome.FAILED, errors=[{"field": "email", "code": "x", "message": "y"}]),
    ]
    outcomes = record_outcomes(action.id, 0, results, datetime.now(UTC))
    events = list(enumerate([*action.collect_events(), *outcomes], start=1))

    changes = project(events)

    assert [(h.entity_id, h.position) for h in changes.entity_history] == [("e1", 2), ("e2", 3), ("e3", 4)]
    assert [(k.key, k.entity_id, k.account_id) for k in changes.entity_keys] == [
        ("a@x", "e1", "acme"),
        ("d@x", "e3", "acme"),
    ]
    assert changes.new_actions[0].actor == {"kind": "cli"}


def test_a_value_given_up_by_an_action_projected_earlier_is_noted_through_the_lookup() -> None:
    action = BulkAction.submit(uuid.uuid4(), "acme", "contact", "update", None, {}, 10, 1)
    earlier = project((n, e) for n, e in enumerate(action.collect_events(), start=1)).new_actions[0]
    outcomes = record_outcomes(
        action.id, 0, [_succeeded(1, "e1", "updated", {"email": ["a@x", "b@x"]})], datetime.now(UTC)
    )

    changes = project(((10 + n, e) for n, e in enumerate(outcomes)), {earlier.action_id: earlier}.get)

    assert [(k.key, k.position) for k in changes.entity_keys] == [("a@x", 10)]
    assert project(((10, outcomes[0]),)).entity_keys == []  # no action known: nothing to file it under
