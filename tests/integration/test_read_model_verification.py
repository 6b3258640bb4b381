"""``compare_read_models`` on each read-model store (SQLite, MongoDB): the live and the
rebuilt logs are merged by row over several pages, so lines deleted or added anywhere,
even across a page boundary, are each one difference and no other line differs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from application.ports.read_models import ActionView, LogLine, ReadModelStore, ViewChanges
from infrastructure.mongo.read_models import MongoReadModelStore
from infrastructure.sqlite.read_models import SQLiteReadModelStore
from projections.report import Difference, VerificationReport
from projections.verification import compare_read_models

pytestmark = pytest.mark.integration

ACTION = "5f0c3c1e-0000-4000-8000-000000000001"
ROWS = 11_000  # the logs are read 5,000 lines a page: three pages


def _line(row: int, outcome: str | None = None) -> LogLine:
    outcome = outcome or ("failed" if row % 10 == 0 else "succeeded")
    errors = [{"field": "email", "code": "missing", "message": "x"}] if outcome == "failed" else []
    return LogLine(ACTION, row, row + 1, row // 1000, outcome, None, None, errors, None, None, row + 10)


def _load(store: ReadModelStore, lines: list[LogLine]) -> None:
    view = ActionView(ACTION, "acme", "contact", "insert", None, "c.csv", 1000, ROWS, "2026-12-01T00:00:00+00:00")
    changes = ViewChanges(new_actions=[view], log_lines=lines)
    delta = changes.delta(ACTION)
    delta.succeeded, delta.failed = ROWS - ROWS // 10, ROWS // 10
    assert store.apply("actions", 1, changes)


@pytest.fixture
def truth(tmp_path: Path) -> Iterator[ReadModelStore]:
    store = SQLiteReadModelStore(tmp_path / "rebuilt.db")
    _load(store, [_line(row) for row in range(1, ROWS + 1)])
    yield store
    store.close()


@pytest.fixture(params=["sqlite", "mongodb"])
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReadModelStore]:
    store: Any
    if request.param == "sqlite":
        store = SQLiteReadModelStore(tmp_path / "live.db")
    else:
        store = MongoReadModelStore(*request.getfixturevalue("database"))
    yield store
    store.close()


def test_lines_missing_and_extra_across_page_boundaries_are_each_one_difference(
    live: ReadModelStore, truth: ReadModelStore
) -> None:
    deleted = {1, 4999, 5000, 5001, 10_001}  # 5,000 failed, the others succeeded
    lines = [_line(row, "succeeded" if row == 7000 else None) for row in range(1, ROWS + 1) if row not in deleted]
    lines += [_line(ROWS + 1), _line(ROWS + 2, "skipped")]  # one succeeded, one skipped
    _load(live, lines)
    listed: list[Difference] = []
    report = VerificationReport(listed.append, limit=None)
    compare_read_models(live, truth, report)

    assert [(d.kind, dict(d.where).get("row"), d.field) for d in listed] == [
        ("log_line_missing", 1, None),
        ("log_line_missing", 4999, None),
        ("log_line_missing", 5000, None),
        ("log_line_missing", 5001, None),
        ("log_line", 7000, "outcome"),
        ("log_line", 7000, "errors"),
        ("log_line_missing", 10_001, None),
        ("log_line_extra", ROWS + 1, None),
        ("log_line_extra", ROWS + 2, None),
        ("outcome_lines", None, "succeeded"),
        ("outcome_lines", None, "failed"),
        ("outcome_lines", None, "skipped"),
    ]
    succeeded, failed = ROWS - ROWS // 10, ROWS // 10
    assert [(d.live, d.events) for d in listed[-3:]] == [
        (succeeded - 4 + 1 + 1, succeeded),  # 4 deleted, row 7000 changed to it, one extra
        (failed - 1 - 1, failed),  # row 5000 deleted, row 7000 changed
        (1, 0),
    ]
    assert report.checked == {"actions": 1, "lines": ROWS + 2}
    assert (report.differences, report.groups[("action_id", ACTION)].rows) == (12, 8)


def test_what_the_events_say_of_a_completed_action_is_checked_even_when_the_live_one_agrees(
    live: ReadModelStore, truth: ReadModelStore
) -> None:
    _load(live, [_line(row) for row in range(1, ROWS + 1)])
    discrepancy = "1 chunk summaries for 2 chunks"
    completed = ViewChanges()
    delta = completed.delta(ACTION)
    delta.status, delta.total, delta.discrepancy = "COMPLETED", ROWS + 5, discrepancy
    for store in (live, truth):
        assert store.apply("actions", 2, completed)
    listed: list[Difference] = []
    compare_read_models(live, truth, VerificationReport(listed.append))
    assert [(d.kind, d.events) for d in listed] == [
        ("completed_short", {"processed": ROWS, "total": ROWS + 5}),
        ("completion_discrepancy", discrepancy),
    ]
    assert listed[0].describe() == f"action {ACTION}: completed with {ROWS} outcomes for {ROWS + 5} records"
