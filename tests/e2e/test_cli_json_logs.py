"""``BULK_LOG_FORMAT=json``: every log line the real CLI writes is one JSON object,
and a line about a chunk names its action and chunk."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.e2e.cli import bulkactions, import_args
from tests.e2e.http_server import ApiServer, create_account, wait_finished
from tests.e2e.raw_http import connect
from tests.waiting import wait_for

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
    assert {(line["action_id"], line["level"]) for line in about} == {(action_id, "INFO")}
    # Each line names the process that wrote it: the import's worker thread, or the
    # child process its other worker hands chunks to.
    assert {line["process"] for line in about} <= {"import", "bulk-worker-0"}


def test_text_logs_stay_the_default(tmp_path: Path) -> None:
    source = tmp_path / "contacts.csv"
    source.write_text("email\na@example.com\n", encoding="utf-8")
    run = bulkactions(tmp_path / "data", *import_args(source), env={**os.environ, "BULK_LOG_LEVEL": "INFO"})
    assert run.code == 0, run.stderr
    worker_lines = [line for line in run.stderr.splitlines() if "application.worker" in line]
    assert worker_lines and all(" INFO application.worker: chunk 0 of action" in line for line in worker_lines)


def test_serve_and_its_child_processes_write_json_lines(tmp_path: Path) -> None:
    server = ApiServer(tmp_path, {"BULK_LOG_FORMAT": "json", "BULK_LOG_LEVEL": "INFO"})
    server.start()
    try:
        with server.client(create_account(tmp_path, "ops")) as client:
            records = [{"email": "a@example.com"}, {"email": "bad"}, {"email": "c@example.com"}]
            body = {"entity": "contact", "action": "insert", "records": records, "options": {"chunk_size": 2}}
            response = client.post("/v1/bulk-actions", json=body)
            assert response.status_code == 202, response.text
            action_id = response.json()["id"]
            wait_finished(client, action_id)
        with connect(server.base_url) as sock:  # not HTTP: the API process says it refused it
            sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            sock.recv(1000)
        log = tmp_path / "serve.log"
        wait_for(lambda: "refused a request" in log.read_text(), 10, "the refusal's log line")
        text = log.read_text()
    finally:
        server.stop()
    banner, *lines = text.splitlines()
    assert banner.startswith("serving on ")  # the command's output, not a log line
    entries = [json.loads(line) for line in lines]  # every log line one object
    chunks = [e for e in entries if e["logger"] == "application.worker"]
    assert sorted(e["chunk_no"] for e in chunks) == [0, 1]
    assert {e["action_id"] for e in chunks} == {action_id}
    assert {e["process"] for e in chunks} <= {"bulk-runtime", "bulk-worker-0"}
    refused = [e for e in entries if e["logger"] == "api.http.protocol"]
    assert refused and refused[0]["process"] == "serve" and refused[0]["action_id"] is None
