"""Drive the real ``bulkactions`` CLI as a subprocess, as a user would."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infrastructure.files.sample import SampleCounts


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    def json_last(self) -> Any:
        return json.loads(self.lines[-1])


def command(data_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "api.cli", "--data-dir", str(data_dir), *args]


def import_args(path: Path, *options: str, entity: str = "contact", action: str = "insert") -> list[str]:
    """Arguments of `bulkactions import PATH --entity E --action A --json [options]`."""
    return ["import", str(path), "--entity", entity, "--action", action, "--json", *options]


def bulkactions(data_dir: Path, *args: str, timeout: float = 240, env: dict[str, str] | None = None) -> Run:
    done = subprocess.run(command(data_dir, *args), capture_output=True, text=True, timeout=timeout, env=env)
    return Run(done.returncode, done.stdout, done.stderr)


def processed(data_dir: Path, action_id: str) -> int:
    """Outcomes projected so far, read straight from the embedded read model."""
    try:
        with sqlite3.connect(f"file:{data_dir / 'readmodels.db'}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute(
                "SELECT succeeded + failed + skipped FROM actions WHERE action_id=?", (action_id,)
            ).fetchone()
    except sqlite3.OperationalError:
        return 0
    return int(row[0]) if row else 0


def run_ok(data_dir: Path, env: dict[str, str] | None, *args: str) -> Run:
    """`bulkactions ARGS` with ``env`` (None: this process's), which must succeed."""
    run = bulkactions(data_dir, *args, env=env)
    assert run.code == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return run


def assert_completed_exactly(summary: dict[str, Any], rows: int, expected: SampleCounts) -> None:
    """An action's summary (``status --json``, an import's last line) says COMPLETED with
    the sample's exact counts and no discrepancy."""
    assert summary["status"] == "COMPLETED"
    assert (summary["total"], summary["succeeded"], summary["failed"], summary["skipped"]) == (
        rows,
        expected.valid,
        expected.invalid,
        expected.duplicates,
    )
    assert summary["discrepancy"] is None
