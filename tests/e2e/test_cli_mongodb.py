"""End to end with MongoDB as the document store (entities, read models, quota,
accounts), the event store on SQLite and the in-process transport: the real CLI,
as a subprocess, against the test session's MongoDB server."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from infrastructure.files.sample import write_contacts_csv
from tests.e2e.cli import bulkactions, import_args
from tests.mongo_server import fresh_database

pytestmark = pytest.mark.e2e


@pytest.fixture
def mongo_env(request: pytest.FixtureRequest) -> dict[str, str]:
    uri, database = fresh_database(request)
    return {
        **os.environ,
        "BULK_DOCUMENT_STORE": "mongodb",
        "BULK_MONGODB_URI": uri,
        "BULK_MONGODB_DATABASE": database,
        "BULK_EVENT_STORE": "sqlite",
        "BULK_TRANSPORT": "inprocess",
    }


def _contacts_in_mongo(env: dict[str, str]) -> int:
    client: MongoClient[dict[str, object]] = MongoClient(env["BULK_MONGODB_URI"])
    try:
        return client[env["BULK_MONGODB_DATABASE"]]["entities"].count_documents({"entity_type": "contact"})
    finally:
        client.close()


def test_an_import_on_mongodb_is_exact_and_verifies_before_and_after_a_replay(
    tmp_path: Path, mongo_env: dict[str, str]
) -> None:
    data, source = tmp_path / "data", tmp_path / "contacts.csv"
    expected = write_contacts_csv(source, 2500)
    run = bulkactions(data, *import_args(source, "--batch-size", "100", "--workers", "3"), env=mongo_env)
    assert run.code == 0, run.stderr
    summary = run.json_last()
    assert summary["status"] == "COMPLETED"
    assert (summary["total"], summary["succeeded"], summary["failed"], summary["skipped"]) == (
        2500,
        expected.valid,
        expected.invalid,
        expected.duplicates,
    )
    assert _contacts_in_mongo(mongo_env) == expected.valid
    assert not (data / "entities.db").exists() and not (data / "readmodels.db").exists()

    action_id = summary["action_id"]
    rows = [json.loads(line)["row"] for line in bulkactions(data, "logs", action_id, env=mongo_env).lines]
    assert rows == list(range(1, 2501))
    skipped = [
        json.loads(line) for line in bulkactions(data, "logs", action_id, "--outcome", "skipped", env=mongo_env).lines
    ]
    assert len(skipped) == expected.duplicates
    assert all(line["duplicate_of_row"] == line["row"] - 50 for line in skipped)

    verified = bulkactions(data, "verify", env=mongo_env)
    assert verified.code == 0, verified.stdout + verified.stderr
    before = bulkactions(data, "status", action_id, "--json", env=mongo_env).json_last()
    replayed = bulkactions(data, "replay", env=mongo_env)
    assert replayed.code == 0, replayed.stderr
    assert bulkactions(data, "status", action_id, "--json", env=mongo_env).json_last() == before
    verified = bulkactions(data, "verify", env=mongo_env)
    assert verified.code == 0, verified.stdout + verified.stderr
    assert "match" in verified.stdout


def test_importing_the_same_file_again_skips_every_valid_row_as_a_duplicate(
    tmp_path: Path, mongo_env: dict[str, str]
) -> None:
    data, source = tmp_path / "data", tmp_path / "contacts.csv"
    expected = write_contacts_csv(source, 600)
    args = import_args(source, "--batch-size", "50")
    first = bulkactions(data, *args, env=mongo_env)
    assert first.code == 0, first.stderr
    second = bulkactions(data, *args, env=mongo_env)
    assert second.code == 0, second.stderr
    summary = second.json_last()
    assert summary["action_id"] != first.json_last()["action_id"]
    assert (summary["succeeded"], summary["failed"], summary["skipped"]) == (
        0,
        expected.invalid,
        expected.valid + expected.duplicates,
    )
    assert _contacts_in_mongo(mongo_env) == expected.valid
    assert bulkactions(data, "verify", env=mongo_env).code == 0


def _outcomes(data: Path, action_id: str, env: dict[str, str]) -> list[tuple[Any, ...]]:
    """Each row's outcome, without the ids that differ from run to run."""
    lines = [json.loads(line) for line in bulkactions(data, "logs", action_id, env=env).lines]
    return [(line["row"], line["outcome"], line.get("op"), line.get("duplicate_of_row")) for line in lines]


def _insert_upsert_update(tmp_path: Path, env: dict[str, str]) -> list[Any]:
    """Insert a file, upsert a second one over it, update by email: what each run says."""
    data = tmp_path / env.get("BULK_DOCUMENT_STORE", "sqlite")
    first, second, third = tmp_path / "first.csv", tmp_path / "second.csv", tmp_path / "third.csv"
    write_contacts_csv(first, 700)
    write_contacts_csv(second, 900)  # the first 700 rows again, then 200 new ones
    third.write_text(
        "email,last_name\n" + "".join(f"person{i}@example.com,Renamed{i}\n" for i in range(0, 1000, 7)),
        encoding="utf-8",
    )
    seen = []
    for source, action in ((first, "insert"), (second, "upsert"), (third, "update")):
        run = bulkactions(data, *import_args(source, "--batch-size", "64", "--workers", "3", action=action), env=env)
        assert run.code == 0, run.stderr
        summary = run.json_last()
        counts = {k: summary[k] for k in ("status", "total", "succeeded", "failed", "skipped")}
        seen.append((action, counts, _outcomes(data, summary["action_id"], env)))
    assert bulkactions(data, "verify", env=env).code == 0
    return seen


def test_insert_upsert_and_update_end_exactly_as_on_sqlite(tmp_path: Path, mongo_env: dict[str, str]) -> None:
    plain_env = {k: v for k, v in os.environ.items() if not k.startswith("BULK_")}
    expected = _insert_upsert_update(tmp_path, plain_env)
    assert [counts["succeeded"] > 0 for _, counts, _ in expected] == [True, True, True]
    assert _insert_upsert_update(tmp_path, mongo_env) == expected
