"""Retry of failed rows through the CLI: `results ID failed` exports them, a fixed copy
goes to `retry`, which makes a child action linked both ways; a chain of retries is
visible from the first action; rows that did not fail are refused up front."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cli import Run, bulkactions, import_args

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

HEADER = "email,first_name,phone"
ROWS = ["a@x.com,A,", "bad-1,B,", "c@x.com,C,", "bad-2,D,", "a@x.com,E,", "bad-3,F,"]


def _ok(run: Run) -> Run:
    assert run.code == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return run


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _status(data: Path, action_id: str) -> dict[str, Any]:
    found: dict[str, Any] = _ok(bulkactions(data, "status", action_id, "--json")).json_last()
    return found


def _imported(tmp_path: Path) -> tuple[Path, str]:
    data = tmp_path / "data"
    path = tmp_path / "in.csv"
    path.write_text(HEADER + "\n" + "\n".join(ROWS) + "\n")
    summary = _ok(bulkactions(data, *import_args(path))).json_last()
    assert (summary["succeeded"], summary["failed"], summary["skipped"]) == (2, 3, 1)
    return data, summary["action_id"]


def _fixed(path: Path, text: str, fixes: dict[str, str]) -> Path:
    for bad, good in fixes.items():
        text = text.replace(bad, good)
    path.write_text(text)
    return path


def test_failed_rows_exported_fixed_and_retried_become_a_chain_of_linked_actions(tmp_path: Path) -> None:
    data, parent = _imported(tmp_path)
    exported = _ok(bulkactions(data, "results", parent, "failed")).stdout
    rows = _csv_rows(exported)
    assert [(r["row"], r["line"], r["outcome"], r["email"], r["first_name"]) for r in rows] == [
        ("2", "3", "failed", "bad-1", "B"),
        ("4", "5", "failed", "bad-2", "D"),
        ("6", "7", "failed", "bad-3", "F"),
    ]
    assert len(_csv_rows(_ok(bulkactions(data, "results", parent, "succeeded")).stdout)) == 2
    skipped = _csv_rows(_ok(bulkactions(data, "results", parent, "skipped")).stdout)
    assert [(r["row"], r["duplicate_of_row"]) for r in skipped] == [("5", "1")]

    # Two of the three fixed; the third still wrong.
    fixed = _fixed(tmp_path / "fixed.csv", exported, {"bad-1": "b@x.com", "bad-2": "d@x.com"})
    child = _ok(bulkactions(data, "retry", parent, str(fixed), "--json")).json_last()
    assert (child["status"], child["total"], child["succeeded"], child["failed"], child["skipped"]) == (
        "COMPLETED",
        3,
        2,
        1,
        0,
    )
    assert (child["action"], child["entity"], child["retry_of"]) == ("insert", "contact", parent)
    assert _status(data, parent)["retried_by"] == {
        "action_id": child["action_id"],
        "status": "COMPLETED",
        "total": 3,
        "succeeded": 2,
        "failed": 1,
        "skipped": 0,
        "retried_by": None,
    }

    # The child's own failed row, fixed and retried: the chain is seen from the first action.
    still = _ok(bulkactions(data, "results", child["action_id"], "failed")).stdout
    assert [(r["row"], r["email"]) for r in _csv_rows(still)] == [("3", "bad-3")]
    again = _fixed(tmp_path / "again.csv", still, {"bad-3": "f@x.com"})
    grandchild = _ok(bulkactions(data, "retry", child["action_id"], str(again), "--json")).json_last()
    assert (grandchild["total"], grandchild["succeeded"], grandchild["failed"]) == (1, 1, 0)
    chain = _status(data, parent)["retried_by"]
    assert chain["action_id"] == child["action_id"]
    assert chain["retried_by"]["action_id"] == grandchild["action_id"]
    assert (chain["retried_by"]["succeeded"], chain["retried_by"]["retried_by"]) == (1, None)

    # The stored input is the fixed row, linked to the row it corrects.
    history = _ok(bulkactions(data, "history", grandchild["action_id"], "--row", "1", "--json")).json_last()
    assert history["events"][0]["records"] == [
        {
            "row": 1,
            "line": 2,
            "data": {"company_domain": "", "email": "f@x.com", "first_name": "F", "last_name": "", "phone": ""},
            "retry_of_row": 3,
        }
    ]


def test_a_retry_is_refused_up_front_for_rows_that_did_not_fail_and_creates_nothing(tmp_path: Path) -> None:
    data, parent = _imported(tmp_path)
    exported = _ok(bulkactions(data, "results", parent, "failed")).stdout
    header = exported.splitlines()[0]
    fields = header.split(",")

    def line(**cells: str) -> str:
        return ",".join(cells.get(name, "") for name in fields)

    not_failed = tmp_path / "not-failed.csv"
    not_failed.write_text(
        "\n".join([header, line(row="1", email="a@x.com"), line(row="2", email="b@x.com"), line(row="5")]) + "\n"
    )
    refused = bulkactions(data, "retry", parent, str(not_failed))
    assert refused.code == 2
    assert f"row(s) 1, 5 of action {parent} did not fail there" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    twice = tmp_path / "twice.csv"
    twice.write_text("\n".join([header, line(row="2", email="b@x.com"), line(row="2", email="bb@x.com")]) + "\n")
    refused = bulkactions(data, "retry", parent, str(twice))
    assert refused.code == 2 and "names row(s) 2 of action" in refused.stderr

    no_row = tmp_path / "no-row.csv"
    no_row.write_text("email,first_name\nb@x.com,B\n")
    refused = bulkactions(data, "retry", parent, str(no_row))
    assert refused.code == 2 and "has no 'row'" in refused.stderr

    assert _status(data, parent)["retried_by"] is None

    fixed = _fixed(tmp_path / "fixed.csv", exported, {"bad-1": "b@x.com"})
    child = _ok(bulkactions(data, "retry", parent, str(fixed), "--json")).json_last()
    refused = bulkactions(data, "retry", parent, str(fixed))
    assert refused.code == 2
    assert f"already retried by action {child['action_id']}" in refused.stderr
    assert len(_ok(bulkactions(data, "status", "--json")).json_last()) == 2


def test_a_retry_of_an_update_by_id_matches_by_id_again(tmp_path: Path) -> None:
    data, parent = _imported(tmp_path)
    ids = [r["entity_id"] for r in _csv_rows(_ok(bulkactions(data, "results", parent, "succeeded")).stdout)]
    update = tmp_path / "update.csv"
    update.write_text(f"id,first_name\n{ids[0]},Ann\nnot-an-id,Nobody\n")
    summary = _ok(bulkactions(data, *import_args(update, "--match-by", "id", action="update"))).json_last()
    assert (summary["succeeded"], summary["failed"]) == (1, 1)
    exported = _ok(bulkactions(data, "results", summary["action_id"], "failed")).stdout
    assert _csv_rows(exported)[0]["id"] == "not-an-id"
    fixed = _fixed(tmp_path / "fixed.csv", exported, {"not-an-id": ids[1]})
    child = _ok(bulkactions(data, "retry", summary["action_id"], str(fixed), "--json")).json_last()
    assert (child["action"], child["succeeded"], child["failed"]) == ("update", 1, 0)
    logs = _ok(bulkactions(data, "logs", child["action_id"])).json_last()
    assert (logs["entity_id"], logs["op"]) == (ids[1], "updated")
