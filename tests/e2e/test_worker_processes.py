"""The embedded runtime's chunk workers in child processes of their own: a child killed
with a chunk in hand costs a delivery, never a record, a count or a duplicate."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from infrastructure.files.sample import write_contacts_csv
from tests.e2e.cli import assert_completed_exactly, bulkactions, command, import_args, processed
from tests.e2e.http_server import descendants

pytestmark = pytest.mark.e2e

ROWS = 40_000


def _named(pid: int, name: str) -> list[int]:
    """The live descendants of ``pid`` that call themselves ``name`` (a killed one stays
    a zombie until its parent notices)."""
    found = []
    for child in descendants(pid):
        try:
            alive = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
            if alive and Path(f"/proc/{child}/comm").read_text().strip() == name:
                found.append(child)
        except OSError:
            continue  # gone meanwhile
    return found


def _new(pid: int, killed: list[int]) -> list[int]:
    """The worker process of worker 0, unless it is one already killed (its signal may
    not have landed yet)."""
    return [child for child in _named(pid, "bulk-worker-0") if child not in killed]


def test_a_worker_process_killed_twice_mid_import_leaves_exact_counts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    expected = write_contacts_csv(tmp_path / "contacts.csv", ROWS)
    args = command(data, *import_args(tmp_path / "contacts.csv", "--chunk-size", "500", "--workers", "2"))
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    try:
        action_id = json.loads(process.stdout.readline())["action_id"]
        killed: list[int] = []
        deadline = time.monotonic() + 180
        for fraction in (0.2, 0.5):
            # Each time the worker process that has chunks in hand now (a new one the second time).
            while processed(data, action_id) < fraction * ROWS or not _new(process.pid, killed):
                assert process.poll() is None, "the import finished before its worker process could be killed"
                assert time.monotonic() < deadline, "the import made no progress"
                time.sleep(0.02)
            (child,) = _new(process.pid, killed)
            os.kill(child, signal.SIGKILL)
            killed.append(child)
        _, stderr = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
    assert process.returncode == 0, stderr
    assert processed(data, action_id) == ROWS
    assert "died with a chunk in hand" in stderr  # each kill was a failed delivery, then done again

    status = bulkactions(data, "status", action_id, "--json")
    summary = status.json_last()
    assert_completed_exactly(summary, ROWS, expected)
    verify = bulkactions(data, "verify", "--entities")
    assert verify.code == 0, verify.stdout
