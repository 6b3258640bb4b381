"""A data dir written by the release before per-account entities (tests/fixtures/
legacy-fbab473) is refused with the command that migrates it, and works after it."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.e2e.cli import bulkactions, import_args

pytestmark = pytest.mark.e2e

LEGACY = Path(__file__).parent.parent / "fixtures" / "legacy-fbab473"


@pytest.fixture
def legacy_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(LEGACY, data, ignore=shutil.ignore_patterns("*.csv", "*.md"))
    return data


def _owners(data: Path) -> dict[str, str]:
    with sqlite3.connect(data / "entities.db") as conn:
        return dict(conn.execute("SELECT unique_key, name FROM entities JOIN entity_names ON key = account").fetchall())


def test_an_old_data_dir_is_refused_with_the_command_that_migrates_it(legacy_dir: Path) -> None:
    run = bulkactions(legacy_dir, "status")
    assert run.code == 2
    assert run.stderr.count("\n") == 1 and "bulkactions migrate" in run.stderr
    assert "Traceback" not in run.stderr


def test_migrate_gives_each_entity_the_account_that_inserted_it_and_names_crossed_ones(legacy_dir: Path) -> None:
    run = bulkactions(legacy_dir, "migrate")
    assert run.code == 0, run.stderr
    assert "migrated 5 entities" in run.stdout
    # Its read models had no audit trail: rebuilt from the events (the log's 29 less the
    # 4 chunk inputs, ChunkQueued, which no read model is made of and the projector skips).
    assert "rebuilt the read models from 25 events" in run.stdout
    # `other`'s UPDATE rewrote acme's shared@x.org in that release: named for review.
    assert "review 1 entity last changed" in run.stdout
    assert _owners(legacy_dir) == {
        "ann@acme.example": "acme",
        "bob@acme.example": "acme",
        "shared@x.org": "acme",
        "acme.example": "acme",
        "zoe@other.example": "other",
    }
    assert bulkactions(legacy_dir, "migrate").stdout.startswith("nothing to migrate")


def test_after_migrating_old_events_replay_and_verify_and_accounts_are_apart(legacy_dir: Path, tmp_path: Path) -> None:
    assert bulkactions(legacy_dir, "migrate").code == 0
    statuses = json.loads(bulkactions(legacy_dir, "status", "--json").stdout)
    assert sorted((s["account_id"], s["succeeded"], s["failed"], s["skipped"]) for s in statuses) == [
        ("acme", 1, 1, 1),
        ("acme", 3, 0, 0),
        ("other", 1, 0, 0),
        ("other", 1, 0, 1),
    ]
    assert bulkactions(legacy_dir, "verify").code == 0
    assert bulkactions(legacy_dir, "replay").code == 0
    assert bulkactions(legacy_dir, "verify").code == 0

    again = tmp_path / "again.csv"
    again.write_text("email,first_name\nshared@x.org,Sally\n")
    summary = bulkactions(legacy_dir, *import_args(again, "--account", "other")).json_last()
    assert (summary["succeeded"], summary["skipped"]) == (1, 0)
