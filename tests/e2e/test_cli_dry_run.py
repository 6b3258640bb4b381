"""--dry-run through the CLI, on each document store: every record validated and
decided (the counts and outcomes it would have), no entity written, the action marked
as a dry run, nothing of it in any entity's audit trail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cli import Run, bulkactions, import_args, run_ok

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def _csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _import(data: Path, env: dict[str, str] | None, path: Path, action: str, *options: str) -> dict[str, Any]:
    found: dict[str, Any] = run_ok(data, env, *import_args(path, *options, action=action)).json_last()
    assert found["status"] == "COMPLETED"
    return found


def _counts(summary: dict[str, Any]) -> tuple[int, int, int, int]:
    return summary["total"], summary["succeeded"], summary["failed"], summary["skipped"]


def _audit(data: Path, env: dict[str, str] | None, email: str) -> Run:
    return bulkactions(data, "audit", "contact", email, "--json", env=env)


def test_a_dry_run_of_each_action_reports_what_would_happen_and_changes_nothing(
    tmp_path: Path, store_env: dict[str, str] | None
) -> None:
    data = tmp_path / "data"
    people = _csv(tmp_path / "people.csv", "email,first_name\na@x.com,A\nb@x.com,B\nc@x.com,C\n")
    _import(data, store_env, people, "insert")

    insert = _csv(tmp_path / "insert.csv", "email,first_name\nnew@x.com,N\na@x.com,A2\nbad,X\nnew@x.com,N2\n")
    dry = _import(data, store_env, insert, "insert", "--dry-run")
    assert _counts(dry) == (4, 1, 1, 2) and dry["dry_run"] is True
    lines = [json.loads(x) for x in run_ok(data, store_env, "logs", dry["action_id"]).lines]
    assert [(x["row"], x["outcome"], x.get("op")) for x in lines] == [
        (1, "succeeded", "created"),
        (2, "skipped", None),
        (3, "failed", None),
        (4, "skipped", None),
    ]
    update = _csv(tmp_path / "update.csv", "email,first_name\na@x.com,Changed\nb@x.com,B\nnobody@x.com,Z\n")
    dry_update = _import(data, store_env, update, "update", "--dry-run")
    assert _counts(dry_update) == (3, 2, 1, 0)
    gone = _csv(tmp_path / "gone.csv", "email\nb@x.com\nc@x.com\nnobody@x.com\n")
    assert _counts(_import(data, store_env, gone, "delete", "--dry-run")) == (3, 2, 1, 0)

    # Nothing changed: no new contact, no update, no delete, nothing in the audit trail.
    assert _audit(data, store_env, "new@x.com").code == 2
    audit = json.loads(run_ok(data, store_env, "audit", "contact", "a@x.com", "--json").stdout)
    assert audit["current"] == {"email": "a@x.com", "first_name": "A"}
    assert [c["op"] for c in audit["changes"]] == ["created"]
    run_ok(data, store_env, "verify", "--entities")

    listed = run_ok(data, store_env, "status").stdout.splitlines()
    assert sum("(dry run)" in line for line in listed) == 3 and len(listed) == 4
    refused = bulkactions(data, "revert", dry["action_id"], env=store_env)
    assert refused.code == 2 and "is a dry run" in refused.stderr
    # What the dry run said is what the real run does.
    assert _counts(_import(data, store_env, insert, "insert")) == (4, 1, 1, 2)
