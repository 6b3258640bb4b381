"""DELETE through the CLI, on each document store: by unique value or by id, a missing
target failed (not_found), the deleted values kept in the events (audit shows them,
verify --entities stays clean), the unique value free for a later insert, and a
revert that brings the deleted entities back exactly (unless their key was taken)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cli import bulkactions, import_args, run_ok

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def _summary(data: Path, env: dict[str, str] | None, path: Path, action: str, *options: str) -> dict[str, Any]:
    found: dict[str, Any] = run_ok(data, env, *import_args(path, *options, action=action)).json_last()
    assert found["status"] == "COMPLETED"
    return found


def _counts(summary: dict[str, Any]) -> tuple[int, int, int, int]:
    return summary["total"], summary["succeeded"], summary["failed"], summary["skipped"]


def _audit(data: Path, env: dict[str, str] | None, email: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(run_ok(data, env, "audit", "contact", email, "--json").stdout)
    return found


def test_deletes_free_the_key_keep_the_values_in_the_events_and_a_revert_brings_them_back(
    tmp_path: Path, store_env: dict[str, str] | None
) -> None:
    data = tmp_path / "data"
    people = tmp_path / "people.csv"
    people.write_text("email,first_name,phone\n" + "".join(f"p{n}@x.com,P{n},+1-{n}\n" for n in range(5)))
    inserted = _summary(data, store_env, people, "insert")
    ids = {
        json.loads(line)["row"]: json.loads(line)["entity_id"]
        for line in run_ok(data, store_env, "logs", inserted["action_id"]).lines
    }

    gone = tmp_path / "gone.csv"  # case does not matter; a repeat is skipped; a missing one fails
    gone.write_text("email,first_name\nP0@X.com,ignored\np1@x.com,\nnobody@x.com,\nnot-an-email,\np0@x.com,\n")
    by_email = _summary(data, store_env, gone, "delete")
    assert _counts(by_email) == (5, 2, 2, 1)
    failed = [
        json.loads(x) for x in run_ok(data, store_env, "logs", by_email["action_id"], "--outcome", "failed").lines
    ]
    assert [(f["row"], f["errors"][0]["code"]) for f in failed] == [(3, "not_found"), (4, "value_error")]

    by_id = tmp_path / "by-id.csv"
    by_id.write_text(f"id\n{ids[3]}\n00000000-0000-0000-0000-000000000000\n")
    assert _counts(_summary(data, store_env, by_id, "delete", "--match-by", "id")) == (2, 1, 1, 0)

    # The deleted values, exactly, in the audit trail; the entity is gone; its email is free.
    audit = _audit(data, store_env, "p0@x.com")
    assert [c["op"] for c in audit["changes"]] == ["created", "deleted"]
    assert audit["changes"][1]["fields"] == {
        "email": {"before": "p0@x.com", "after": None},
        "first_name": {"before": "P0", "after": None},
        "phone": {"before": "+1-0", "after": None},
    }
    assert audit["current"] is None
    again = tmp_path / "again.csv"
    again.write_text("email,first_name\np1@x.com,New\n")
    assert _counts(_summary(data, store_env, again, "insert")) == (1, 1, 0, 0)
    run_ok(data, store_env, "verify", "--entities")

    # Reverting the delete by email: p0 comes back as it was; p1's email is taken again.
    revert = run_ok(data, store_env, "revert", by_email["action_id"], "--json").json_last()
    assert _counts(revert) == (5, 1, 0, 4)
    skipped = [
        json.loads(x) for x in run_ok(data, store_env, "logs", revert["action_id"], "--outcome", "skipped").lines
    ]
    assert [s["row"] for s in skipped if s["reason"].startswith("changed_since")] == [2]
    restored = _audit(data, store_env, "p0@x.com")
    assert restored["entity_id"] == ids[1]
    assert restored["current"] == {"email": "p0@x.com", "first_name": "P0", "phone": "+1-0"}
    assert [c["op"] for c in restored["changes"]] == ["created", "deleted", "reverted"]
    assert _audit(data, store_env, "p1@x.com")["current"] == {"email": "p1@x.com", "first_name": "New"}
    run_ok(data, store_env, "verify", "--entities")


def test_a_delete_matches_by_the_unique_field_or_id_only(tmp_path: Path) -> None:
    path = tmp_path / "gone.csv"
    path.write_text("email\na@x.com\n")
    refused = bulkactions(tmp_path / "data", *import_args(path, "--match-by", "phone", action="delete"))
    assert refused.code == 2
    assert "DELETE of contact matches by 'id' or 'email', not 'phone'" in refused.stderr
    assert not (tmp_path / "data").exists()
