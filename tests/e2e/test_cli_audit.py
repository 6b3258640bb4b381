"""The audit trail through the CLI, on each document store: what changed, when, by
whom, per entity; and the revert of a whole action."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cli import Run, bulkactions, import_args
from tests.mongo_server import fresh_database

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@dataclass
class Store:
    env: dict[str, str] | None


@pytest.fixture(params=["sqlite", "mongodb"])
def store(request: pytest.FixtureRequest) -> Store:
    if request.param == "sqlite":
        return Store(None)
    uri, database = fresh_database(request)
    return Store(
        {**os.environ, "BULK_DOCUMENT_STORE": "mongodb", "BULK_MONGODB_URI": uri, "BULK_MONGODB_DATABASE": database}
    )


def _csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "\n" + "".join(r + "\n" for r in rows))
    return path


def _run(data: Path, store: Store, *args: str) -> Run:
    run = bulkactions(data, *args, env=store.env)
    assert run.code == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return run


def _import(data: Path, store: Store, path: Path, action: str) -> dict[str, Any]:
    summary: dict[str, Any] = _run(data, store, *import_args(path, "--account", "acme", action=action)).json_last()
    assert summary["status"] == "COMPLETED"
    return summary


def _audit(data: Path, store: Store, email: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        _run(data, store, "audit", "contact", email, "--account", "acme", "--json").stdout
    )
    return found


def test_audit_shows_exact_changes_and_a_revert_restores_what_was_not_changed_since(
    tmp_path: Path, store: Store
) -> None:
    data = tmp_path / "data"
    people = [f"c{n}@x.com,F{n},L{n}" for n in range(1000)]
    _import(data, store, _csv(tmp_path / "all.csv", "email,first_name,last_name", people), "insert")
    # 100 updates of two fields, one of them to the value it has: only first_name changes.
    first = [f"c{n}@x.com,New{n},L{n}" for n in range(100)]
    update = _import(data, store, _csv(tmp_path / "update.csv", "email,first_name,last_name", first), "update")
    later = [f"c{n}@x.com,Later{n}" for n in range(90, 100)]  # another action changes 10 of them again
    _import(data, store, _csv(tmp_path / "later.csv", "email,first_name", later), "update")

    audit = _audit(data, store, "c5@x.com")
    assert [(c["op"], c["fields"]) for c in audit["changes"]] == [
        (
            "created",
            {
                "email": {"before": None, "after": "c5@x.com"},
                "first_name": {"before": None, "after": "F5"},
                "last_name": {"before": None, "after": "L5"},
            },
        ),
        ("updated", {"first_name": {"before": "F5", "after": "New5"}}),
    ]
    assert audit["changes"][1]["action_id"] == update["action_id"] and audit["changes"][1]["row"] == 6
    assert audit["changes"][1]["actor"]["kind"] == "cli" and audit["changes"][1]["actor"]["account_id"] == "acme"
    assert audit["current"]["first_name"] == "New5"
    told = _run(data, store, "history", update["action_id"], "--row", "6").stdout
    assert "input (line 7):" in told and "succeeded at" in told and "first_name: 'F5' -> 'New5'" in told

    revert = _run(data, store, "revert", update["action_id"], "--json").json_last()

    assert (revert["status"], revert["total"], revert["succeeded"], revert["skipped"]) == ("COMPLETED", 100, 90, 10)
    skipped = [json.loads(x) for x in _run(data, store, "logs", revert["action_id"], "--outcome", "skipped").lines]
    assert {s["row"] for s in skipped} == set(range(91, 101))
    assert all(s["reason"].startswith("changed_since") for s in skipped)
    assert _audit(data, store, "c5@x.com")["current"]["first_name"] == "F5"
    assert _audit(data, store, "c95@x.com")["current"]["first_name"] == "Later95"
    assert [c["op"] for c in _audit(data, store, "c5@x.com")["changes"]] == ["created", "updated", "reverted"]

    twice = bulkactions(data, "revert", update["action_id"], env=store.env)
    assert twice.code == 2 and "already reverted" in twice.stderr
    _run(data, store, "replay")
    _run(data, store, "verify")
