"""Cancelling a running import: the rest of its chunks are not processed."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from infrastructure.files.sample import write_contacts_csv
from tests.e2e.cli import bulkactions, command, import_args, processed

pytestmark = pytest.mark.e2e


def test_a_cancelled_import_stops_with_the_counts_so_far(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_contacts_csv(tmp_path / "c.csv", 80_000)
    args = command(data, *import_args(tmp_path / "c.csv", "--chunk-size", "200", "--workers", "1"))
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    action_id = json.loads(process.stdout.readline())["action_id"]
    deadline = time.monotonic() + 60
    while processed(data, action_id) == 0:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.02)
    cancel = bulkactions(data, "cancel", action_id)
    assert cancel.code == 0, cancel.stderr
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    summary = json.loads(out.splitlines()[-1])
    assert summary["status"] == "CANCELLED"
    assert 0 < summary["processed"] < 80_000
    again = bulkactions(data, "cancel", action_id)
    assert again.code == 2 and "CANCELLED" in again.stderr
    assert bulkactions(data, "verify", action_id).code == 0
