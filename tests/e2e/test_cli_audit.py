"""The audit trail through the CLI, on each document store: what changed, when, by
whom, per entity; and the revert of a whole action."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cli import bulkactions, import_args, run_ok

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def _csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "\n" + "".join(r + "\n" for r in rows))
    return path


def _import(data: Path, env: dict[str, str] | None, path: Path, action: str) -> dict[str, Any]:
    summary: dict[str, Any] = run_ok(data, env, *import_args(path, "--account", "acme", action=action)).json_last()
    assert summary["status"] == "COMPLETED"
    return summary


def _audit(data: Path, env: dict[str, str] | None, email: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        run_ok(data, env, "audit", "contact", email, "--account", "acme", "--json").stdout
    )
    return found


def test_audit_shows_exact_changes_and_a_revert_restores_what_was_not_changed_since(
    tmp_path: Path, store_env: dict[str, str] | None
) -> None:
    data = tmp_path / "data"
    people = [f"c{n}@x.com,F{n},L{n}" for n in range(1000)]
    _import(data, store_env, _csv(tmp_path / "all.csv", "email,first_name,last_name", people), "insert")
    # 100 updates of two fields, one of them to the value it has: only first_name changes.
    first = [f"c{n}@x.com,New{n},L{n}" for n in range(100)]
    update = _import(data, store_env, _csv(tmp_path / "update.csv", "email,first_name,last_name", first), "update")
    later = [f"c{n}@x.com,Later{n}" for n in range(90, 100)]  # another action changes 10 of them again
    _import(data, store_env, _csv(tmp_path / "later.csv", "email,first_name", later), "update")

    audit = _audit(data, store_env, "c5@x.com")
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
    told = run_ok(data, store_env, "history", update["action_id"], "--row", "6").stdout
    assert "input (line 7):" in told and "succeeded at" in told and "first_name: 'F5' -> 'New5'" in told

    revert = run_ok(data, store_env, "revert", update["action_id"], "--json").json_last()

    assert (revert["status"], revert["total"], revert["succeeded"], revert["skipped"]) == ("COMPLETED", 100, 90, 10)
    skipped = [
        json.loads(x) for x in run_ok(data, store_env, "logs", revert["action_id"], "--outcome", "skipped").lines
    ]
    assert {s["row"] for s in skipped} == set(range(91, 101))
    assert all(s["reason"].startswith("changed_since") for s in skipped)
    assert _audit(data, store_env, "c5@x.com")["current"]["first_name"] == "F5"
    assert _audit(data, store_env, "c95@x.com")["current"]["first_name"] == "Later95"
    assert [c["op"] for c in _audit(data, store_env, "c5@x.com")["changes"]] == ["created", "updated", "reverted"]

    twice = bulkactions(data, "revert", update["action_id"], env=store_env)
    assert twice.code == 2 and "already reverted" in twice.stderr
    run_ok(data, store_env, "replay")
    run_ok(data, store_env, "verify")
