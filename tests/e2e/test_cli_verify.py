"""`bulkactions verify` as an auditor uses it: the embedded read model (readmodels.db)
tampered with sqlite3 in one way at a time, and every difference reported with the
true figures of the whole log, nothing else.

The action: 2,000 contacts (60 invalid rows 1-3, 101-103, ...; 57 duplicates rows
104-106, 204-206, ...), so 1,883 succeeded, 60 failed, 57 skipped.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from infrastructure.files.sample import write_contacts_csv
from tests.e2e.cli import Run, bulkactions, import_args

pytestmark = pytest.mark.e2e

ROWS, SUCCEEDED, FAILED, SKIPPED = 2000, 1883, 60, 57
FAILED_ROW = 501  # row i + 1 with i % 100 == 0: an invalid contact


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A data dir holding one completed 2,000-row action, and the action's id."""
    work = tmp_path_factory.mktemp("verify")
    expected = write_contacts_csv(work / "contacts.csv", ROWS)
    assert (expected.valid, expected.invalid, expected.duplicates) == (SUCCEEDED, FAILED, SKIPPED)
    run = bulkactions(work / "data", *import_args(work / "contacts.csv", "--batch-size", "250"))
    assert run.code == 0, run.stderr
    return work / "data", run.json_last()["action_id"]


@pytest.fixture
def data(imported: tuple[Path, str], tmp_path: Path) -> Path:
    """A copy of the imported data dir, for one test to tamper with."""
    return Path(shutil.copytree(imported[0], tmp_path / "data"))


@pytest.fixture
def action_id(imported: tuple[Path, str]) -> str:
    return imported[1]


def tamper(data: Path, sql: str, *params: Any) -> None:
    with sqlite3.connect(data / "readmodels.db") as conn:
        assert conn.execute(sql, params).rowcount == 1


def log_line(data: Path, row: int) -> dict[str, Any]:
    with sqlite3.connect(data / "readmodels.db") as conn:
        conn.row_factory = sqlite3.Row
        found = conn.execute("SELECT * FROM record_logs WHERE row=?", (row,)).fetchone()
    line = dict(found)
    line["errors"] = json.loads(line["errors"]) if line["errors"] else []
    return line


def verify_json(data: Path, *args: str) -> tuple[Run, list[dict[str, Any]], dict[str, Any]]:
    """Run `verify --json`: the run, its difference objects, its summary line."""
    run = bulkactions(data, "verify", "--json", *args)
    objects = [json.loads(line) for line in run.lines]
    assert objects and objects[-1]["kind"] == "summary", run.stdout + run.stderr
    return run, objects[:-1], objects[-1]


def outcome_lines(action_id: str, outcome: str, live: int, events: int) -> dict[str, Any]:
    return {"kind": "outcome_lines", "action_id": action_id, "field": outcome, "live": live, "events": events}


def test_a_failed_line_edited_to_succeeded_is_reported_with_the_true_figures_of_the_whole_log(
    data: Path, action_id: str
) -> None:
    tamper(data, "UPDATE record_logs SET outcome='succeeded' WHERE row=?", FAILED_ROW)
    run = bulkactions(data, "verify")
    assert run.code == 1
    listed = [line for line in run.lines if line.startswith(f"action {action_id}:")]
    assert listed == [
        f"action {action_id}: row {FAILED_ROW}: outcome is 'succeeded' live but 'failed' in the events",
        f"action {action_id}: the live log has {SUCCEEDED + 1} succeeded lines, the events give {SUCCEEDED}",
        f"action {action_id}: the live log has {FAILED - 1} failed lines, the events give {FAILED}",
    ]
    assert "verify: 3 difference(s) between read models and events" in run.stderr


def test_a_changed_log_line_is_the_only_line_reported_and_the_outcome_figures_are_exact(
    data: Path, action_id: str
) -> None:
    tamper(data, "UPDATE record_logs SET outcome='succeeded' WHERE row=?", FAILED_ROW)
    run, found, summary = verify_json(data)
    assert run.code == 1
    assert found == [
        {
            "kind": "log_line",
            "action_id": action_id,
            "row": FAILED_ROW,
            "field": "outcome",
            "live": "succeeded",
            "events": "failed",
        },
        outcome_lines(action_id, "succeeded", SUCCEEDED + 1, SUCCEEDED),
        outcome_lines(action_id, "failed", FAILED - 1, FAILED),
    ]
    assert summary["actions_checked"] == 1
    assert summary["lines_checked"] == ROWS
    assert summary["differences"] == 3
    assert summary["groups"] == [
        {
            "action_id": action_id,
            "differences": 3,
            "rows": 1,
            "by_field": {"log_line.outcome": 1, "outcome_lines.succeeded": 1, "outcome_lines.failed": 1},
        }
    ]


def test_a_deleted_log_line_is_reported_missing_and_no_later_line_differs(data: Path, action_id: str) -> None:
    deleted = log_line(data, FAILED_ROW)
    tamper(data, "DELETE FROM record_logs WHERE row=?", FAILED_ROW)
    run, found, summary = verify_json(data)
    assert run.code == 1
    assert found == [
        {"kind": "log_line_missing", "action_id": action_id, "row": FAILED_ROW, "field": None, "live": None}
        | {"events": deleted},
        outcome_lines(action_id, "failed", FAILED - 1, FAILED),
    ]
    assert (summary["lines_checked"], summary["differences"]) == (ROWS, 2)


@pytest.mark.parametrize("row", [0, ROWS + 1], ids=["before-the-first", "after-the-last"])
def test_an_extra_log_line_is_reported_extra_and_no_other_line_differs(data: Path, action_id: str, row: int) -> None:
    with sqlite3.connect(data / "readmodels.db") as conn:
        conn.execute(
            "INSERT INTO record_logs SELECT action_id, ?, line, chunk_no, 'skipped', entity_id, op, errors, reason, 7,"
            " position FROM record_logs WHERE row=?",
            (row, ROWS),
        )
    extra = log_line(data, row)
    run, found, summary = verify_json(data)
    assert run.code == 1
    assert found == [
        {"kind": "log_line_extra", "action_id": action_id, "row": row, "field": None, "live": extra, "events": None},
        outcome_lines(action_id, "skipped", SKIPPED + 1, SKIPPED),
    ]
    assert (summary["lines_checked"], summary["differences"]) == (ROWS + 1, 2)


def test_a_changed_count_is_the_only_difference_reported(data: Path, action_id: str) -> None:
    tamper(data, "UPDATE actions SET failed = failed + 1 WHERE action_id=?", action_id)
    run, found, summary = verify_json(data)
    assert run.code == 1
    assert found == [
        {"kind": "action_field", "action_id": action_id, "field": "failed", "live": FAILED + 1, "events": FAILED}
    ]
    assert summary["groups"] == [
        {"action_id": action_id, "differences": 1, "rows": 0, "by_field": {"action_field.failed": 1}}
    ]


def test_many_changed_lines_list_the_first_ones_and_count_every_one(data: Path, action_id: str) -> None:
    with sqlite3.connect(data / "readmodels.db") as conn:
        changed = conn.execute("UPDATE record_logs SET outcome='succeeded' WHERE outcome='failed'").rowcount
    assert changed == FAILED
    run = bulkactions(data, "verify", "--limit", "5")
    assert run.code == 1
    listed = [line for line in run.lines if line.startswith(f"action {action_id}: row ")]
    assert listed == [
        f"action {action_id}: row {row}: outcome is 'succeeded' live but 'failed' in the events"
        for row in (1, 2, 3, 101, 102)
    ]
    assert f"{FAILED + 2 - 5} more difference(s) not listed" in run.stdout
    assert f"action {action_id}: {FAILED + 2} difference(s) in {FAILED} row(s)" in run.stdout
    assert f"log_line.outcome: {FAILED}" in run.stdout

    _, found, summary = verify_json(data)
    assert [d["row"] for d in found if d["kind"] == "log_line"] == [
        r for r in range(1, ROWS + 1) if r % 100 in (1, 2, 3)
    ]
    assert found[-2:] == [
        outcome_lines(action_id, "succeeded", SUCCEEDED + FAILED, SUCCEEDED),
        outcome_lines(action_id, "failed", 0, FAILED),
    ]
    assert summary["differences"] == FAILED + 2


def test_read_models_that_match_give_a_clean_summary_and_exit_0(data: Path) -> None:
    run, found, summary = verify_json(data)
    assert run.code == 0, run.stdout
    assert found == []
    assert summary == {
        "kind": "summary",
        "actions_checked": 1,
        "lines_checked": ROWS,
        "differences": 0,
        "listed": 0,
        "groups": [],
    }
    text = bulkactions(data, "verify")
    assert text.code == 0
    assert text.stdout.strip() == f"verify: read models match the events (1 action, {ROWS} log lines checked)"
