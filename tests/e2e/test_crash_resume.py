"""An import SIGKILLed at any moment, then resumed, ends with exact results."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from infrastructure.files.sample import write_contacts_csv
from tests.e2e.cli import assert_completed_exactly, bulkactions, command, import_args, processed

pytestmark = pytest.mark.e2e

ROWS = 60_000


def _count(path: Path, sql: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(sql).fetchone()[0])


@pytest.mark.parametrize("kill_after_fraction", [0.0, 0.3, 0.8])
def test_an_import_killed_then_resumed_has_exact_counts_and_no_duplicates(
    tmp_path: Path, kill_after_fraction: float
) -> None:
    data = tmp_path / "data"
    expected = write_contacts_csv(tmp_path / "contacts.csv", ROWS)
    args = command(data, *import_args(tmp_path / "contacts.csv", "--chunk-size", "500", "--workers", "2"))
    # Its own session, so the kill takes the import and its projector process at once.
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert process.stdout is not None
    action_id = json.loads(process.stdout.readline())["action_id"]
    deadline = time.monotonic() + 120
    while processed(data, action_id) < kill_after_fraction * ROWS:
        assert process.poll() is None, "the import finished before it could be killed"
        assert time.monotonic() < deadline, "the import made no progress"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    killed_at = processed(data, action_id)
    assert killed_at < ROWS, "killed too late to test anything"

    resumed = bulkactions(data, "resume", action_id, "--json")
    assert resumed.code == 0, resumed.stderr
    summary = resumed.json_last()
    assert_completed_exactly(summary, ROWS, expected)
    assert _count(data / "entities.db", "SELECT COUNT(*) FROM entities") == expected.valid
    assert _count(data / "entities.db", "SELECT COUNT(DISTINCT unique_key) FROM entities") == expected.valid
    assert _count(data / "readmodels.db", "SELECT COUNT(*) FROM record_logs") == ROWS
    assert (
        _count(
            data / "events.db",
            "SELECT COUNT(*) FROM events JOIN event_topics USING (topic)"
            " WHERE name LIKE '%RecordS%' OR name LIKE '%RecordF%'",
        )
        == ROWS
    )
    verify = bulkactions(data, "verify", action_id)
    assert verify.code == 0, verify.stdout
