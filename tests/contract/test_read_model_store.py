"""Contract of the ReadModelStore port, run against every adapter."""

from __future__ import annotations

import uuid
from typing import Any

from application.ports.read_models import (
    ActionDelta,
    ActionFilter,
    ActionView,
    EntityHistoryEntry,
    EntityKey,
    LogLine,
    ViewChanges,
)
from domain.bulk_action import entity_id_for


def _view(account: str = "acc", created_at: str = "2026-01-01T00:00:00+00:00", **kw: Any) -> ActionView:
    return ActionView(
        action_id=kw.pop("action_id", str(uuid.uuid4())),
        account_id=account,
        entity_type=kw.pop("entity_type", "contact"),
        action_type="insert",
        match_by=None,
        source_name="f.csv",
        chunk_size=2,
        expected_total=3,
        created_at=created_at,
        **kw,
    )


def _line(action_id: str, row: int, outcome: str, position: int) -> LogLine:
    errors = [{"field": "email", "code": "missing", "message": "Field required"}] if outcome == "failed" else []
    return LogLine(
        action_id,
        row,
        row + 1,
        (row - 1) // 2,
        outcome,
        None if outcome == "failed" else f"e{row}",
        "created" if outcome == "succeeded" else None,
        errors,
        "duplicate: x" if outcome == "skipped" else None,
        1 if outcome == "skipped" else None,
        position,
    )


def _processing_batch(view: ActionView) -> ViewChanges:
    changes = ViewChanges(new_actions=[view])
    delta = changes.delta(view.action_id)
    delta.status, delta.total, delta.chunk_count = "PROCESSING", 3, 2
    for row, outcome in ((1, "succeeded"), (2, "failed"), (3, "skipped")):
        changes.log_lines.append(_line(view.action_id, row, outcome, 10 + row))
        setattr(delta, outcome, getattr(delta, outcome) + 1)
    delta.chunks_done = 2
    delta.first_outcome_at, delta.last_outcome_at = "2026-01-01T00:00:01+00:00", "2026-01-01T00:00:02+00:00"
    return changes


def test_a_fresh_store_is_at_position_zero(read_models: Any) -> None:
    assert read_models.position("actions") == 0


def test_applied_changes_are_readable_and_move_the_position(read_models: Any) -> None:
    view = _view()
    assert read_models.apply("actions", 13, _processing_batch(view))
    stored = read_models.get_action(view.action_id)
    assert (stored.status, stored.total, stored.chunk_count, stored.chunks_done) == ("PROCESSING", 3, 2, 2)
    assert (stored.succeeded, stored.failed, stored.skipped) == (1, 1, 1)
    assert stored.first_outcome_at == "2026-01-01T00:00:01+00:00"
    assert read_models.position("actions") == 13
    assert [line.row for line in read_models.logs(view.action_id)] == [1, 2, 3]
    assert read_models.logs(view.action_id, outcome="failed")[0].errors[0]["code"] == "missing"


def test_a_batch_at_or_below_the_stored_position_changes_nothing(read_models: Any) -> None:
    view = _view()
    read_models.apply("actions", 13, _processing_batch(view))
    assert not read_models.apply("actions", 13, _processing_batch(view))
    assert not read_models.apply("actions", 5, _processing_batch(view))
    stored = read_models.get_action(view.action_id)
    assert (stored.succeeded, stored.failed, stored.skipped, stored.chunks_done) == (1, 1, 1, 2)
    assert len(read_models.logs(view.action_id)) == 3


def test_positions_are_kept_per_projection(read_models: Any) -> None:
    read_models.apply("one", 7, ViewChanges())
    assert read_models.position("one") == 7
    assert read_models.position("two") == 0


def test_later_deltas_add_counts_and_keep_the_first_outcome_time(read_models: Any) -> None:
    view = _view()
    read_models.apply("actions", 13, _processing_batch(view))
    later = ViewChanges()
    later.deltas[view.action_id] = ActionDelta(
        status="COMPLETED",
        succeeded=2,
        first_outcome_at="2026-01-01T00:00:05+00:00",
        last_outcome_at="2026-01-01T00:00:06+00:00",
        finished_at="2026-01-01T00:00:07+00:00",
        discrepancy="x",
    )
    read_models.apply("actions", 20, later)
    stored = read_models.get_action(view.action_id)
    assert stored.succeeded == 3 and stored.status == "COMPLETED" and stored.total == 3
    assert stored.first_outcome_at == "2026-01-01T00:00:01+00:00"
    assert stored.last_outcome_at == "2026-01-01T00:00:06+00:00"
    assert (stored.finished_at, stored.discrepancy) == ("2026-01-01T00:00:07+00:00", "x")


def test_logs_page_by_row_and_filter_by_outcome(read_models: Any) -> None:
    view = _view()
    read_models.apply("actions", 13, _processing_batch(view))
    assert [line.row for line in read_models.logs(view.action_id, after_row=1, limit=1)] == [2]
    assert [line.row for line in read_models.logs(view.action_id, outcome="skipped")] == [3]
    skipped = read_models.logs(view.action_id, outcome="skipped")[0]
    assert (skipped.reason, skipped.duplicate_of_row, skipped.position) == ("duplicate: x", 1, 13)
    assert read_models.logs(str(uuid.uuid4())) == []


def test_a_log_line_keeps_what_its_link_fields_named(read_models: Any) -> None:
    view = _view()
    link = {"company_domain": {"entity": "company", "key": "a.com", "entity_id": "c1", "status": "created"}}
    lines = [
        LogLine(view.action_id, 1, 2, 0, "succeeded", "e1", "created", [], None, None, 5, link),
        LogLine(view.action_id, 2, 3, 0, "succeeded", "e2", "created", [], None, None, 6),
    ]
    read_models.apply("actions", 6, ViewChanges(new_actions=[view], log_lines=lines))
    assert [line.links for line in read_models.logs(view.action_id)] == [link, None]


def test_actions_list_newest_first_with_filters_and_a_cursor(read_models: Any) -> None:
    views = [
        _view(
            account="a" if i % 2 else "b",
            created_at=f"2026-01-0{i + 1}T00:00:00+00:00",
            entity_type="company" if i == 4 else "contact",
        )
        for i in range(5)
    ]
    read_models.apply("actions", 1, ViewChanges(new_actions=views))
    newest_first = [v.action_id for v in reversed(views)]
    listed = read_models.list_actions(ActionFilter())
    assert [v.action_id for v in listed] == newest_first
    page = read_models.list_actions(ActionFilter(), limit=2)
    rest = read_models.list_actions(ActionFilter(), before=(page[-1].created_at, page[-1].action_id), limit=10)
    assert [v.action_id for v in page + rest] == newest_first
    assert {v.account_id for v in read_models.list_actions(ActionFilter(account_id="a"))} == {"a"}
    assert [v.entity_type for v in read_models.list_actions(ActionFilter(entity_type="company"))] == ["company"]
    ranged = read_models.list_actions(ActionFilter(created_from="2026-01-02", created_to="2026-01-04"))
    assert [v.created_at[:10] for v in ranged] == ["2026-01-03", "2026-01-02"]
    assert read_models.list_actions(ActionFilter(status="COMPLETED")) == []


def test_an_unknown_action_is_none(read_models: Any) -> None:
    assert read_models.get_action(str(uuid.uuid4())) is None


def test_a_batch_computed_from_a_position_that_has_moved_is_refused(read_models: Any) -> None:
    view = _view()
    read_models.apply("actions", 5, ViewChanges(new_actions=[view]), expected_position=0)
    # A second projector read position 0 too and computed events 1..13: refused whole.
    assert not read_models.apply("actions", 13, _processing_batch(view), expected_position=0)
    stored = read_models.get_action(view.action_id)
    assert (stored.succeeded, stored.chunks_done) == (0, 0)
    assert read_models.logs(view.action_id) == []
    assert read_models.apply("actions", 13, _processing_batch(view), expected_position=5)
    assert read_models.get_action(view.action_id).succeeded == 1


# --------------------------------------------------------------------------- audit trail


def test_the_audit_trail_index_names_each_entitys_events_and_the_values_entities_gave_up(read_models: Any) -> None:
    e1, e2 = str(uuid.uuid4()), str(uuid.uuid4())
    changes = ViewChanges(new_actions=[_view(actor={"kind": "cli", "user": "ann"})])
    changes.entity_history += [
        EntityHistoryEntry(e1, 30),
        EntityHistoryEntry(e1, 20),
        EntityHistoryEntry(e1, 10),
        EntityHistoryEntry(e2, 15),
    ]
    changes.entity_keys += [
        EntityKey("acc", "contact", "x@y", e2, 15),
        EntityKey("acc", "contact", "x@y", "e9", 40),
        EntityKey("other", "contact", "x@y", "e7", 50),
    ]
    assert read_models.apply("actions", 50, changes)

    assert read_models.entity_positions(e1) == [10, 20, 30]
    assert read_models.entity_positions(str(uuid.uuid4())) == []
    assert [k.entity_id for k in read_models.entities_holding("acc", "contact", "x@y")] == [e2, "e9"]
    assert [(h.entity_id, h.position) for h in read_models.entity_history_by_entity((e1, 10), 2)] == [
        (e1, 20),
        (e1, 30),
    ]
    assert read_models.get_action(changes.new_actions[0].action_id).actor == {"kind": "cli", "user": "ann"}


def test_a_revert_link_lands_on_the_original_action_view(read_models: Any) -> None:
    original, revert = _view(), _view()
    read_models.apply("actions", 1, ViewChanges(new_actions=[original]))
    revert.reverts = original.action_id
    later = ViewChanges(new_actions=[revert])
    later.delta(original.action_id).reverted_by = revert.action_id
    read_models.apply("actions", 2, later)
    assert read_models.get_action(original.action_id).reverted_by == revert.action_id
    assert read_models.get_action(revert.action_id).reverts == original.action_id


def test_the_audit_trail_is_read_entity_by_entity_a_page_at_a_time(read_models: Any) -> None:
    changes = ViewChanges(new_actions=[_view()])
    ids = sorted(str(uuid.uuid4()) for _ in range(3))
    entries = [EntityHistoryEntry(ids[n % 3], 100 + n) for n in range(10)]  # interleaved
    changes.entity_history += entries
    read_models.apply("actions", 200, changes)
    read, after = [], None
    while page := read_models.entity_history_by_entity(after, 4):
        read += page
        after = (page[-1].entity_id, page[-1].position)
    assert [(h.entity_id, h.position) for h in read] == sorted((h.entity_id, h.position) for h in entries)


def test_ping_answers_while_the_store_is_reachable(read_models: Any) -> None:
    read_models.ping()


def test_actions_are_counted_by_status(read_models: Any) -> None:
    assert read_models.count_by_status() == {}
    queueing, processing = _view(), _view()
    changes = _processing_batch(processing)
    changes.new_actions.append(queueing)
    assert read_models.apply("actions", 1, changes)
    done = ViewChanges()
    done.delta(processing.action_id).status = "COMPLETED"
    assert read_models.apply("actions", 2, done)
    assert read_models.count_by_status() == {"QUEUEING": 1, "COMPLETED": 1}


def test_a_log_line_keeps_what_its_record_did_to_its_entity(read_models: Any) -> None:
    view = _view()
    ops = ["created", "updated", "unchanged", "deleted", "recreated", "removed", "a future op"]
    lines = [
        LogLine(view.action_id, row, row + 1, 0, "succeeded", f"e{row}", op, [], None, None, 10 + row)
        for row, op in enumerate(ops, start=1)
    ]
    read_models.apply("actions", 20, ViewChanges(new_actions=[view], log_lines=lines))
    assert [line.op for line in read_models.logs(view.action_id)] == ops


def test_the_audit_trail_of_entities_inserted_with_the_ids_their_rows_make(read_models: Any) -> None:
    """As the projector writes an import: each inserted entity's id is the one its row
    makes, with a log line and an index entry at its outcome's position; a later action
    updates some of them; a dry run's outcomes are no entity's history."""
    first, second, dry = _view(), _view(), _view(dry_run=True)
    changes = ViewChanges(new_actions=[first, second, dry])
    inserted = {}
    for view, base in ((first, 100), (second, 200)):
        for row in range(1, 6):
            entity_id = str(entity_id_for(uuid.UUID(view.action_id), row))
            inserted[(view.action_id, row)] = entity_id
            position = base + row
            changes.log_lines.append(
                LogLine(view.action_id, row, row + 1, 0, "succeeded", entity_id, "created", [], None, None, position)
            )
            changes.entity_history.append(EntityHistoryEntry(entity_id, position))
    changes.log_lines.append(
        LogLine(
            dry.action_id,
            1,
            2,
            0,
            "succeeded",
            str(entity_id_for(uuid.UUID(dry.action_id), 1)),
            "created",
            [],
            None,
            None,
            300,
        )
    )
    updater = _view()
    changes.new_actions.append(updater)
    updated = inserted[(first.action_id, 2)]
    changes.log_lines.append(LogLine(updater.action_id, 1, 2, 0, "succeeded", updated, "updated", [], None, None, 400))
    changes.entity_history.append(EntityHistoryEntry(updated, 400))
    assert read_models.apply("actions", 400, changes)

    assert read_models.entity_positions(updated) == [102, 400]
    assert read_models.entity_positions(inserted[(second.action_id, 5)]) == [205]
    assert read_models.entity_positions(str(entity_id_for(uuid.UUID(dry.action_id), 1))) == []
    expected = sorted(
        [(entity_id, 100 + row if a == first.action_id else 200 + row) for (a, row), entity_id in inserted.items()]
        + [(updated, 400)]
    )
    for limit in (1, 3, 100):
        read, after = [], None
        while page := read_models.entity_history_by_entity(after, limit):
            assert len(page) <= limit
            read += [(h.entity_id, h.position) for h in page]
            after = read[-1]
        assert read == expected
    assert [line.entity_id for line in read_models.logs(first.action_id)] == [
        inserted[(first.action_id, row)] for row in range(1, 6)
    ]
