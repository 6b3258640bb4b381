"""`bulkactions verify` as an auditor uses it: the read models tampered with in one way
at a time, straight in their store (sqlite3 on readmodels.db; pymongo on MongoDB), and
every difference reported with the true figures of the whole log, nothing else.

The action: 2,000 contacts (60 invalid rows 1-3, 101-103, ...; 57 duplicates rows
104-106, 204-206, ...), so 1,883 succeeded, 60 failed, 57 skipped. It is imported once
per store; each test tampers with its own copy (the data dir, and the MongoDB database).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infrastructure.files.sample import write_contacts_csv
from tests.e2e.cli import Run, bulkactions, import_args
from tests.e2e.read_model_tampering import (
    Entities,
    MongoEntities,
    MongoReadModels,
    ReadModels,
    SQLiteEntities,
    SQLiteReadModels,
    copy_mongo_database,
)
from tests.mongo_server import drop_database, fresh_database

pytestmark = pytest.mark.e2e

ROWS, SUCCEEDED, FAILED, SKIPPED = 2000, 1883, 60, 57
FAILED_ROW = 501  # row i + 1 with i % 100 == 0: an invalid contact
CHECKED = f"actions checked: 1, lines checked: {ROWS}, history_entries checked: {SUCCEEDED}"
STORES = ["sqlite", "mongodb"]


class Imported:
    """A data dir (and its document store) holding one completed 2,000-row action."""

    def __init__(self, data: Path, env: dict[str, str] | None, action_id: str) -> None:
        self.data, self.env, self.action_id = data, env, action_id


def _import(work: Path, env: dict[str, str] | None) -> Imported:
    expected = write_contacts_csv(work / "contacts.csv", ROWS)
    assert (expected.valid, expected.invalid, expected.duplicates) == (SUCCEEDED, FAILED, SKIPPED)
    run = bulkactions(work / "data", *import_args(work / "contacts.csv", "--chunk-size", "250"), env=env)
    assert run.code == 0, run.stderr
    return Imported(work / "data", env, run.json_last()["action_id"])


def _mongo_env(uri: str, database: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("BULK_")},
        "BULK_DOCUMENT_STORE": "mongodb",
        "BULK_MONGODB_URI": uri,
        "BULK_MONGODB_DATABASE": database,
    }


@pytest.fixture(scope="module")
def imported_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Imported:
    return _import(tmp_path_factory.mktemp("verify-sqlite"), None)


@pytest.fixture(scope="module")
def imported_mongodb(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Imported:
    return _import(tmp_path_factory.mktemp("verify-mongodb"), _mongo_env(*fresh_database(request)))


class Copy:
    """One test's copy of the imported action, the CLI's environment, its read models
    and its entity store."""

    def __init__(
        self, data: Path, env: dict[str, str] | None, action_id: str, read_models: ReadModels, entities: Entities
    ) -> None:
        self.data, self.env, self.action_id, self.read_models = data, env, action_id, read_models
        self.entities = entities

    def verify(self, *args: str) -> Run:
        return bulkactions(self.data, "verify", *args, env=self.env)

    def verify_json(self, *args: str) -> tuple[Run, list[dict[str, Any]], dict[str, Any]]:
        """Run `verify --json`: the run, its difference objects, its summary line."""
        run = self.verify("--json", *args)
        objects = [json.loads(line) for line in run.lines]
        assert objects and objects[-1]["kind"] == "summary", run.stdout + run.stderr
        return run, objects[:-1], objects[-1]


@pytest.fixture(params=STORES)
def action(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Copy]:
    imported: Imported = request.getfixturevalue(f"imported_{request.param}")
    data = Path(shutil.copytree(imported.data, tmp_path / "data"))
    if imported.env is None:
        read_models = SQLiteReadModels(data / "readmodels.db", imported.action_id)
        yield Copy(data, None, imported.action_id, read_models, SQLiteEntities(data / "entities.db"))
        return
    uri, source = imported.env["BULK_MONGODB_URI"], imported.env["BULK_MONGODB_DATABASE"]
    database = f"test_{uuid.uuid4().hex}"
    copy_mongo_database(uri, source, database)
    read_models, entities = MongoReadModels(uri, database, imported.action_id), MongoEntities(uri, database)
    try:
        yield Copy(data, _mongo_env(uri, database), imported.action_id, read_models, entities)
    finally:
        read_models.close()
        entities.close()
        drop_database(uri, database)


def outcome_lines(action_id: str, outcome: str, live: int, events: int) -> dict[str, Any]:
    return {"kind": "outcome_lines", "action_id": action_id, "field": outcome, "live": live, "events": events}


def test_a_failed_line_edited_to_succeeded_is_reported_with_the_true_figures_of_the_whole_log(action: Copy) -> None:
    action.read_models.set_outcome(FAILED_ROW, "succeeded")
    run = action.verify()
    assert run.code == 1
    a = action.action_id
    assert run.lines == [
        f"action {a}: row {FAILED_ROW}: outcome is 'succeeded' live but 'failed' in the events",
        f"action {a}: the live log has {SUCCEEDED + 1} succeeded lines, the events give {SUCCEEDED}",
        f"action {a}: the live log has {FAILED - 1} failed lines, the events give {FAILED}",
        f"verify: 3 difference(s) ({CHECKED})",
        f"action {a}: 3 difference(s) in 1 row(s); "
        "log_line.outcome: 1, outcome_lines.succeeded: 1, outcome_lines.failed: 1",
    ]
    assert "verify: 3 difference(s) between read models and events" in run.stderr


def test_a_changed_log_line_is_the_only_line_reported_and_the_outcome_figures_are_exact(action: Copy) -> None:
    action.read_models.set_outcome(FAILED_ROW, "succeeded")
    run, found, summary = action.verify_json()
    assert run.code == 1
    a = action.action_id
    assert found == [
        {"kind": "log_line", "action_id": a, "row": FAILED_ROW, "field": "outcome"}
        | {"live": "succeeded", "events": "failed"},
        outcome_lines(a, "succeeded", SUCCEEDED + 1, SUCCEEDED),
        outcome_lines(a, "failed", FAILED - 1, FAILED),
    ]
    assert summary["actions_checked"] == 1
    assert summary["lines_checked"] == ROWS
    assert summary["differences"] == 3
    assert summary["groups"] == [
        {
            "action_id": a,
            "differences": 3,
            "rows": 1,
            "by_field": {"log_line.outcome": 1, "outcome_lines.succeeded": 1, "outcome_lines.failed": 1},
        }
    ]


def test_a_deleted_log_line_is_reported_missing_and_no_later_line_differs(action: Copy) -> None:
    deleted = action.read_models.line(FAILED_ROW)
    action.read_models.delete_line(FAILED_ROW)
    run, found, summary = action.verify_json()
    assert run.code == 1
    a = action.action_id
    assert found == [
        {"kind": "log_line_missing", "action_id": a, "row": FAILED_ROW, "field": None, "live": None, "events": deleted},
        outcome_lines(a, "failed", FAILED - 1, FAILED),
    ]
    assert (summary["lines_checked"], summary["differences"]) == (ROWS, 2)


@pytest.mark.parametrize("row", [0, ROWS + 1], ids=["before-the-first", "after-the-last"])
def test_an_extra_log_line_is_reported_extra_and_no_other_line_differs(action: Copy, row: int) -> None:
    action.read_models.add_line(row, like_row=ROWS, outcome="skipped", duplicate_of_row=7)
    extra = action.read_models.line(row)
    run, found, summary = action.verify_json()
    assert run.code == 1
    a = action.action_id
    assert found == [
        {"kind": "log_line_extra", "action_id": a, "row": row, "field": None, "live": extra, "events": None},
        outcome_lines(a, "skipped", SKIPPED + 1, SKIPPED),
    ]
    assert (summary["lines_checked"], summary["differences"]) == (ROWS + 1, 2)


def test_a_changed_count_is_the_only_difference_reported(action: Copy) -> None:
    action.read_models.add_to_count("failed", 1)
    run, found, summary = action.verify_json()
    assert run.code == 1
    a = action.action_id
    assert found == [{"kind": "action_field", "action_id": a, "field": "failed", "live": FAILED + 1, "events": FAILED}]
    assert summary["groups"] == [{"action_id": a, "differences": 1, "rows": 0, "by_field": {"action_field.failed": 1}}]


def test_many_changed_lines_list_the_first_ones_and_count_every_one(action: Copy) -> None:
    assert action.read_models.mark_every_failed_line_succeeded() == FAILED
    run = action.verify("--limit", "5")
    assert run.code == 1
    a = action.action_id
    assert run.lines[:5] == [
        f"action {a}: row {row}: outcome is 'succeeded' live but 'failed' in the events" for row in (1, 2, 3, 101, 102)
    ]
    assert run.lines[5:] == [
        f"... {FAILED + 2 - 5} more difference(s) not listed (see --limit)",
        f"verify: {FAILED + 2} difference(s) ({CHECKED})",
        f"action {a}: {FAILED + 2} difference(s) in {FAILED} row(s); "
        f"log_line.outcome: {FAILED}, outcome_lines.succeeded: 1, outcome_lines.failed: 1",
    ]
    _, found, summary = action.verify_json()
    assert [d["row"] for d in found if d["kind"] == "log_line"] == [
        r for r in range(1, ROWS + 1) if r % 100 in (1, 2, 3)
    ]
    assert found[-2:] == [
        outcome_lines(a, "succeeded", SUCCEEDED + FAILED, SUCCEEDED),
        outcome_lines(a, "failed", 0, FAILED),
    ]
    assert (summary["differences"], summary["listed"]) == (FAILED + 2, FAILED + 2)


def test_read_models_that_match_give_a_clean_summary_and_exit_0(action: Copy) -> None:
    run, found, summary = action.verify_json()
    assert run.code == 0, run.stdout
    assert found == []
    assert summary == {
        "kind": "summary",
        "actions_checked": 1,
        "lines_checked": ROWS,
        "history_entries_checked": SUCCEEDED,
        "differences": 0,
        "listed": 0,
        "groups": [],
    }
    text = action.verify()
    assert text.code == 0
    assert text.stdout.strip() == f"verify: read models match the events ({CHECKED})"


def test_live_read_models_behind_the_events_are_reported_as_the_projector_behind(
    imported_sqlite: Imported, tmp_path: Path
) -> None:
    data = Path(shutil.copytree(imported_sqlite.data, tmp_path / "data"))
    SQLiteReadModels(data / "readmodels.db", imported_sqlite.action_id).move_position(-1)
    run = bulkactions(data, "verify", "--json")
    assert run.code == 1
    found, summary = [json.loads(line) for line in run.lines[:-1]], json.loads(run.lines[-1])
    [behind] = found
    assert behind["kind"] == "projector_behind"
    assert behind["live"] == behind["events"] - 1
    assert (summary["differences"], summary["groups"]) == (1, [])


# --------------------------------------------------------------------------- entities


def _entity_of_row(action: Copy, row: int) -> str:
    """The entity of the first succeeded row from ``row`` on."""
    while (line := action.read_models.line(row))["outcome"] != "succeeded":
        row += 1
    entity_id: str = line["entity_id"]
    return entity_id


def test_the_entity_store_matches_the_events_when_nobody_touched_it(action: Copy) -> None:
    run, found, summary = action.verify_json("--entities")
    assert run.code == 0, run.stdout
    assert found == []
    assert (summary["entities_checked"], summary["entities_not_checkable_checked"]) == (SUCCEEDED, 0)


def test_an_entity_field_edited_outside_the_platform_is_that_one_difference(action: Copy) -> None:
    entity_id = _entity_of_row(action, 2)
    before = action.entities.values(entity_id)
    action.entities.set_field(entity_id, "first_name", "Edited By Hand")
    run, found, summary = action.verify_json("--entities")
    assert run.code == 1
    assert found == [
        {
            "kind": "entity_field",
            "entity_type": "contact",
            "entity_id": entity_id,
            "key": before["email"],
            "field": "first_name",
            "live": "Edited By Hand",
            "events": before["first_name"],
        }
    ]
    assert summary["differences"] == 1


def test_a_deleted_and_an_extra_entity_are_each_reported_with_their_values(action: Copy) -> None:
    gone = _entity_of_row(action, 2)
    kept = _entity_of_row(action, 20)
    values = action.entities.values(gone)
    action.entities.delete(gone)
    extra_id = "ffffffff-ffff-8fff-bfff-ffffffffffff"  # sorts after every real id
    action.entities.add_like(kept, extra_id, "extra@example.com")
    run, found, summary = action.verify_json("--entities")
    assert run.code == 1
    assert found == [
        {
            "kind": "entity_missing",
            "entity_type": "contact",
            "entity_id": gone,
            "field": None,
            "live": None,
            "events": values,
        },
        {
            "kind": "entity_extra",
            "entity_type": "contact",
            "entity_id": extra_id,
            "key": "extra@example.com",
            "field": None,
            "live": {**action.entities.values(kept), "email": "extra@example.com"},
            "events": None,
        },
    ]
    assert (summary["differences"], summary["entities_checked"]) == (2, SUCCEEDED + 1)


def test_a_deleted_line_of_the_audit_trail_is_that_one_difference(action: Copy) -> None:
    line = action.read_models.delete_a_history_line()
    run, found, summary = action.verify_json()
    assert run.code == 1
    assert [(d["kind"], d["entity_id"], d["position"]) for d in found] == [
        ("history_entry_missing", line["entity_id"], line["position"])
    ]
    assert (summary["differences"], summary["history_entries_checked"]) == (1, SUCCEEDED)
