"""``BULK_LOG_FORMAT=json``: every log line the real CLI writes is one JSON object,
and a line about a chunk names its action and chunk."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.e2e.cli import bulkactions, import_args

pytestmark = pytest.mark.e2e


def test_json_log_lines_parse_and_name_the_action_and_chunk(tmp_path: Path) -> None:
    source = tmp_path / "contacts.csv"
    source.write_text("email,first_name\na@example.com,A\nnot-an-email,B\nc@example.com,C\n", encoding="utf-8")
    env = {**os.environ, "BULK_LOG_FORMAT": "json", "BULK_LOG_LEVEL": "INFO"}
    run = bulkactions(tmp_path / "data", *import_args(source, "--chunk-size", "2"), env=env)
    assert run.code == 0, run.stderr
    action_id = run.json_last()["action_id"]
    lines = [json.loads(line) for line in run.stderr.splitlines()]  # each line one object
    assert lines and all(
        set(line) >= {"time", "level", "process", "message", "action_id", "chunk_no"} for line in lines
    )
    chunks = sorted(line["chunk_no"] for line in lines if line["logger"] == "application.worker")
    assert chunks == [0, 1]  # one line per chunk: 3 records in chunks of 2
    about = [line for line in lines if line["logger"] == "application.worker"]
    assert {(line["action_id"], line["level"], line["process"]) for line in about} == {(action_id, "INFO", "import")}


def test_text_logs_stay_the_default(tmp_path: Path) -> None:
    source = tmp_path / "contacts.csv"
    source.write_text("email\na@example.com\n", encoding="utf-8")
    run = bulkactions(tmp_path / "data", *import_args(source), env={**os.environ, "BULK_LOG_LEVEL": "INFO"})
    assert run.code == 0, run.stderr
    worker_lines = [line for line in run.stderr.splitlines() if "application.worker" in line]
    assert worker_lines and all(" INFO application.worker: chunk 0 of action" in line for line in worker_lines)
