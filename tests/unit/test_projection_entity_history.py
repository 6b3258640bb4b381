"""The actions projection files each outcome that changed an entity under that entity:
its version, what changed, and the unique values it took."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from domain.bulk_action import BulkAction, Outcome, RecordResult, record_outcomes
from projections.actions import project

pytestmark = pytest.mark.unit


def test_succeeded_outcomes_become_entity_history_lines_and_keys_under_their_actions_account() -> None:
    action = BulkAction.submit(uuid.uuid4(), "acme", "contact", "update", None, {}, 10, 3, {"kind": "cli"})
    created = list(action.collect_events())
    results = [
        RecordResult(
            1, 2, Outcome.SUCCEEDED, entity_id="e1", op="updated", changes={"email": ["a@x", "b@x"]}, version=4
        ),
        RecordResult(2, 3, Outcome.SUCCEEDED, entity_id="e2", op="unchanged", changes={}, version=1),
        RecordResult(3, 4, Outcome.FAILED, errors=[{"field": "email", "code": "x", "message": "y"}]),
    ]
    outcomes = record_outcomes(action.id, 0, results, datetime.now(UTC))
    events = [(n, e) for n, e in enumerate([*created, *outcomes], start=1)]

    changes = project(events)

    assert [(h.entity_id, h.account_id, h.version, h.op, h.changes) for h in changes.entity_history] == [
        ("e1", "acme", 4, "updated", {"email": ["a@x", "b@x"]}),
        ("e2", "acme", 1, "unchanged", {}),
    ]
    assert [(k.key, k.entity_id, k.account_id) for k in changes.entity_keys] == [("b@x", "e1", "acme")]
    assert changes.new_actions[0].actor == {"kind": "cli"}


def test_outcomes_of_an_action_projected_earlier_are_filed_through_the_lookup() -> None:
    action = BulkAction.submit(uuid.uuid4(), "acme", "contact", "insert", None, {}, 10, 1)
    earlier = project((n, e) for n, e in enumerate(action.collect_events(), start=1)).new_actions[0]
    result = RecordResult(
        1, 2, Outcome.SUCCEEDED, entity_id="e1", op="created", changes={"email": [None, "a@x"]}, version=1
    )
    outcomes = record_outcomes(action.id, 0, [result], datetime.now(UTC))

    changes = project(((10 + n, e) for n, e in enumerate(outcomes)), {earlier.action_id: earlier}.get)

    assert [(h.entity_id, h.position) for h in changes.entity_history] == [("e1", 10)]
    assert project(((10, outcomes[0]),)).entity_history == []  # no action known: nothing to file it under
