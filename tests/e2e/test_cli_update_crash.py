"""Before values stay exact through a crash: an update killed while some entities
hold its change but its outcome events do not yet, then resumed."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from infrastructure.stored_json import unpacked
from tests.e2e.cli import bulkactions, command, import_args

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def _csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "\n" + "".join(r + "\n" for r in rows))
    return path


def _written_before_stored(data: Path, inserted: int) -> bool:
    try:
        with sqlite3.connect(f"file:{data / 'entities.db'}?mode=ro", uri=True, timeout=5) as entities:
            written = entities.execute("SELECT COUNT(*) FROM entities WHERE version > 1").fetchone()[0]
        with sqlite3.connect(f"file:{data / 'events.db'}?mode=ro", uri=True, timeout=5) as events:
            stored = events.execute(
                "SELECT COUNT(*) FROM events JOIN event_topics USING (topic) WHERE name LIKE '%RecordSucceeded'"
            ).fetchone()[0]
    except sqlite3.OperationalError:
        return False
    return bool(written > stored - inserted and written >= 2000)


def test_before_values_stay_exact_when_an_update_is_killed_and_resumed(tmp_path: Path) -> None:
    data, rows = tmp_path / "data", 20_000
    people = [f"c{n}@x.com,F{n}" for n in range(rows)]
    assert bulkactions(data, *import_args(_csv(tmp_path / "all.csv", "email,first_name", people))).code == 0
    changed = _csv(tmp_path / "update.csv", "email,first_name", [f"c{n}@x.com,New{n}" for n in range(rows)])
    args = command(data, *import_args(changed, "--batch-size", "500", action="update"))
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert process.stdout is not None
    action_id = json.loads(process.stdout.readline())["action_id"]
    # Kill it while some entities hold the update but its outcome events do not yet:
    # the window in which a re-run must find its own before values again.
    deadline = time.monotonic() + 120
    while not _written_before_stored(data, rows):
        assert process.poll() is None and time.monotonic() < deadline
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)

    resumed = bulkactions(data, "resume", action_id, "--json")

    assert resumed.code == 0, resumed.stderr
    assert resumed.json_last()["succeeded"] == rows
    # Every row's outcome says exactly what it changed, whichever run stored it.
    with sqlite3.connect(data / "events.db") as conn:
        states = [
            json.loads(unpacked(s))
            for (s,) in conn.execute(
                "SELECT state FROM events JOIN event_topics USING (topic) WHERE name LIKE ?", ("%RecordSucceeded",)
            )
        ]
    outcomes = {s["row"]: (s["op"], s["changes"]) for s in states if s["action_id"] == action_id}
    assert outcomes == {
        row: ("updated", {"first_name": [f"F{row - 1}", f"New{row - 1}"]}) for row in range(1, rows + 1)
    }
    assert bulkactions(data, "verify").code == 0
