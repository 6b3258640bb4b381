"""End to end on the embedded default: import generated files, check exact results."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest

from infrastructure.files.sample import write_contacts_csv
from tests.e2e.cli import bulkactions, command, import_args

pytestmark = pytest.mark.e2e

CONTACTS_CSV = b"email,first_name\na@x.com,Ann\nnot-an-email,Bob\nc@x.com,Cy\n"
CONTACTS_JSONL = b'{"email": "a@x.com"}\n{"email": "bad"}\n{"email": "c@x.com"}\n'


def _entity_count(data_dir: Path, entity_type: str) -> int:
    with sqlite3.connect(data_dir / "entities.db") as conn:
        counted = "SELECT COUNT(*) FROM entities JOIN entity_names ON key = entity_type WHERE name=?"
        return int(conn.execute(counted, (entity_type,)).fetchone()[0])


def test_a_contacts_file_is_accounted_for_record_by_record(tmp_path: Path) -> None:
    data = tmp_path / "data"
    expected = write_contacts_csv(tmp_path / "contacts.csv", 2500)
    run = bulkactions(data, *import_args(tmp_path / "contacts.csv", "--chunk-size", "100", "--workers", "3"))
    assert run.code == 0, run.stderr
    first, summary = json.loads(run.lines[0]), run.json_last()
    assert first["action_id"] == summary["action_id"]
    assert summary["status"] == "COMPLETED"
    assert (summary["total"], summary["succeeded"], summary["failed"], summary["skipped"]) == (
        2500,
        expected.valid,
        expected.invalid,
        expected.duplicates,
    )
    assert _entity_count(data, "contact") == expected.valid

    action_id = summary["action_id"]
    logs = bulkactions(data, "logs", action_id)
    lines = [json.loads(line) for line in logs.lines]
    assert [line["row"] for line in lines] == list(range(1, 2501))
    assert sum(line["outcome"] == "failed" for line in lines) == expected.invalid

    skipped = [json.loads(line) for line in bulkactions(data, "logs", action_id, "--outcome", "skipped").lines]
    # Row i+1 (0-based i in slots 3-5 of each hundred, from the second hundred) duplicates row i-50.
    assert {line["row"] for line in skipped} == {i + 1 for i in range(100, 2500) if i % 100 in (3, 4, 5)}
    assert all(line["duplicate_of_row"] == line["row"] - 50 for line in skipped)

    failed_csv = list(csv.reader(bulkactions(data, "logs", action_id, "--outcome", "failed", "--format", "csv").lines))
    assert failed_csv[0][:3] == ["row", "line", "outcome"]
    assert failed_csv[1][:3] == ["1", "2", "failed"] and "email" in failed_csv[1][5]

    status = json.loads(bulkactions(data, "status", action_id, "--json").stdout)
    assert (status["succeeded"], status["failed"], status["skipped"]) == (
        expected.valid,
        expected.invalid,
        expected.duplicates,
    )


def test_a_records_history_shows_its_input_and_its_outcome(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_contacts_csv(tmp_path / "c.csv", 300)
    summary = bulkactions(data, *import_args(tmp_path / "c.csv", "--chunk-size", "50")).json_last()
    history = json.loads(bulkactions(data, "history", summary["action_id"], "--row", "104", "--json").stdout)
    assert [e["type"] for e in history["events"]] == ["ChunkQueued", "RecordSkipped"]
    assert history["events"][0]["records"] == [
        {
            "row": 104,
            "line": 105,
            "data": {
                "email": "Person53@Example.com",
                "first_name": "Dup",
                "last_name": "Licate",
                "phone": "",
                "company_domain": "",
            },
            "duplicate_of_row": 54,
        }
    ]
    assert history["events"][1]["duplicate_of_row"] == 54
    missing = bulkactions(data, "history", summary["action_id"], "--row", "301")
    assert missing.code == 2 and "no row 301" in missing.stderr


def test_the_old_name_batch_size_still_sets_the_chunk_size_and_is_hidden_from_help(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_contacts_csv(tmp_path / "c.csv", 30)
    summary = bulkactions(data, *import_args(tmp_path / "c.csv", "--batch-size", "7")).json_last()
    history = json.loads(bulkactions(data, "history", summary["action_id"], "--row", "15", "--json").stdout)
    assert (history["events"][0]["chunk_no"], history["events"][0]["first_row"]) == (2, 15)
    shown = bulkactions(data, "import", "--help").stdout
    assert "--chunk-size" in shown and "--batch-size" not in shown


def test_replay_rebuilds_read_models_that_verify_matches(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_contacts_csv(tmp_path / "c.csv", 1200)
    summary = bulkactions(data, *import_args(tmp_path / "c.csv", "--chunk-size", "100")).json_last()
    before = bulkactions(data, "logs", summary["action_id"]).stdout
    assert bulkactions(data, "verify").code == 0
    replay = bulkactions(data, "replay")
    assert replay.code == 0 and "replayed" in replay.stdout
    verify = bulkactions(data, "verify", summary["action_id"])
    assert verify.code == 0, verify.stdout
    assert bulkactions(data, "logs", summary["action_id"]).stdout == before


def test_verify_reports_a_read_model_that_differs_from_the_events(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_contacts_csv(tmp_path / "c.csv", 200)
    summary = bulkactions(data, *import_args(tmp_path / "c.csv")).json_last()
    with sqlite3.connect(data / "readmodels.db") as conn:
        conn.execute("UPDATE actions SET failed = failed + 1")
        conn.execute("DELETE FROM record_logs WHERE row = 7")
    verify = bulkactions(data, "verify")
    assert verify.code == 1
    assert f"action {summary['action_id']}: failed is" in verify.stdout
    assert "row 7" in verify.stdout
    assert "difference(s)" in verify.stderr


def test_json_lines_and_json_arrays_of_companies_and_products(tmp_path: Path) -> None:
    data = tmp_path / "data"
    companies = tmp_path / "companies.jsonl"
    companies.write_text(
        "\n".join(
            [
                json.dumps({"domain": "https://www.acme.com/", "name": "Acme"}),
                json.dumps({"domain": "ACME.com", "name": "Acme again"}),
                json.dumps({"domain": "globex.com", "employee_count": -5}),
                "not json",
            ]
        )
        + "\n"
    )
    run = bulkactions(data, *import_args(companies, entity="company", action="upsert"))
    summary = run.json_last()
    # One input changes each record once: the second acme.com is a duplicate of row 1.
    assert (summary["succeeded"], summary["failed"], summary["skipped"]) == (1, 2, 1), run.stderr
    skipped = json.loads(bulkactions(data, "logs", summary["action_id"], "--outcome", "skipped").lines[0])
    assert (skipped["row"], skipped["duplicate_of_row"]) == (2, 1)
    products = tmp_path / "products.json"
    products.write_text(
        json.dumps(
            [{"sku": "w-1", "name": "Widget", "price": "9.99"}, {"sku": "W-1", "name": "Dup"}, {"name": "no sku"}]
        )
    )
    summary = bulkactions(data, *import_args(products, entity="product")).json_last()
    assert (summary["succeeded"], summary["failed"], summary["skipped"]) == (1, 1, 1)


def test_update_by_email_then_status_lists_newest_first(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (tmp_path / "new.csv").write_text("email,first_name\na@x.com,Ann\nb@x.com,Bob\n")
    (tmp_path / "upd.csv").write_text("email,last_name\nA@X.com,Lee\nnobody@x.com,Who\n")
    first = bulkactions(data, *import_args(tmp_path / "new.csv")).json_last()
    second = bulkactions(data, *import_args(tmp_path / "upd.csv", action="update")).json_last()
    assert (second["succeeded"], second["failed"]) == (1, 1)
    failed = json.loads(bulkactions(data, "logs", second["action_id"], "--outcome", "failed").lines[0])
    assert failed["errors"][0]["code"] == "not_found"
    listed = json.loads(bulkactions(data, "status", "--json").stdout)
    assert [a["action_id"] for a in listed] == [second["action_id"], first["action_id"]]


def test_the_same_idempotency_key_returns_the_same_action_and_changes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_contacts_csv(tmp_path / "c.csv", 500)
    args = [*import_args(tmp_path / "c.csv")]
    first = bulkactions(data, *args, "--idempotency-key", "nightly-2026-11-29")
    again = bulkactions(data, *args, "--idempotency-key", "nightly-2026-11-29")
    assert json.loads(again.lines[0]) == {"action_id": first.json_last()["action_id"], "created": False}
    counts = ("status", "total", "succeeded", "failed", "skipped")
    assert [again.json_last()[k] for k in counts] == [first.json_last()[k] for k in counts]
    assert _entity_count(data, "contact") == first.json_last()["succeeded"]
    assert len(json.loads(bulkactions(data, "status", "--json").stdout)) == 1


def test_a_json_array_with_an_integer_past_64_bits_is_imported_not_crashed(tmp_path: Path) -> None:
    # Such an integer once reached the event store's encoder (orjson, 64-bit) and the
    # import died with a traceback after Created; it is now read as a float, as in JSON lines.
    companies = tmp_path / "companies.json"
    companies.write_text(
        '[{"domain": "big.com", "employee_count": 123456789012345678901234567890}, {"domain": "ok.com"}]'
    )
    run = bulkactions(tmp_path / "data", *import_args(companies, entity="company"))
    assert run.code == 0, run.stderr
    summary = run.json_last()
    assert (summary["status"], summary["succeeded"], summary["failed"]) == ("COMPLETED", 1, 1)
    failed = json.loads(bulkactions(tmp_path / "data", "logs", summary["action_id"], "--outcome", "failed").lines[0])
    assert failed["row"] == 1 and failed["errors"][0]["field"] == "employee_count"


def test_an_idempotency_key_reused_for_a_different_file_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_contacts_csv(tmp_path / "first.csv", 50)
    write_contacts_csv(tmp_path / "second.csv", 60)
    first = bulkactions(data, *import_args(tmp_path / "first.csv"), "--idempotency-key", "nightly")
    assert first.code == 0, first.stderr

    reused = bulkactions(data, *import_args(tmp_path / "second.csv"), "--idempotency-key", "nightly")
    other_action = bulkactions(
        data, *import_args(tmp_path / "first.csv", action="upsert"), "--idempotency-key", "nightly"
    )

    for run in (reused, other_action):
        assert run.code == 2, run.stdout + run.stderr
        assert run.stdout == "" and run.stderr.count("\n") == 1
        assert "idempotency key" in run.stderr and "different request" in run.stderr
    assert len(json.loads(bulkactions(data, "status", "--json").stdout)) == 1


def test_an_empty_idempotency_key_is_refused(tmp_path: Path) -> None:
    write_contacts_csv(tmp_path / "c.csv", 5)
    run = bulkactions(tmp_path / "data", *import_args(tmp_path / "c.csv"), "--idempotency-key", "")
    assert run.code == 2 and run.stderr.count("\n") == 1 and "idempotency" in run.stderr.lower()
    assert not (tmp_path / "data" / "events.db").exists()


def _stdin_import(data: Path, content: bytes, *options: str) -> subprocess.CompletedProcess[bytes]:
    args = ["import", "-", "--entity", "contact", "--action", "insert", "--json", *options]
    return subprocess.run(command(data, *args), input=content, capture_output=True, timeout=120)


@pytest.mark.parametrize(("content", "fmt"), [(CONTACTS_CSV, None), (CONTACTS_JSONL, None), (CONTACTS_CSV, "csv")])
@pytest.mark.timeout(60)
def test_standard_input_is_imported_once_and_its_spool_removed(tmp_path: Path, content: bytes, fmt: str | None) -> None:
    data = tmp_path / "data"
    done = _stdin_import(data, content, *(["--format", fmt] if fmt else []))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.splitlines()[-1])
    assert (summary["status"], summary["succeeded"], summary["failed"], summary["source"]) == (
        "COMPLETED",
        2,
        1,
        "stdin",
    )
    assert list((data / "spool").glob("*")) == []


@pytest.mark.timeout(60)
def test_a_pipe_given_as_the_file_is_read_once(tmp_path: Path) -> None:
    fifo = tmp_path / "contacts-pipe"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_bytes, args=(CONTACTS_CSV,))
    writer.start()
    run = bulkactions(tmp_path / "data", *import_args(fifo))
    writer.join(timeout=30)
    assert run.code == 0, run.stderr
    assert (run.json_last()["succeeded"], run.json_last()["failed"]) == (2, 1)


def test_bad_standard_input_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = _stdin_import(data, b"email,shoe_size\na@x.com,9\n")
    assert done.returncode == 2
    assert b"unknown column(s) shoe_size" in done.stderr and done.stderr.count(b"\n") == 1
    assert not data.exists()


def test_line_breaks_inside_quoted_csv_cells_are_stored_as_the_file_has_them(tmp_path: Path) -> None:
    cells = ["Ann\r\nMarie", "Bo\rB", "Cy\nD", "E\r\n\r\nF"]
    for eol in ("\n", "\r\n"):
        data = tmp_path / f"data-{len(eol)}"
        text = f"email,first_name{eol}" + "".join(f'u{i}@x.com,"{c}"{eol}' for i, c in enumerate(cells))
        (tmp_path / "c.csv").write_bytes(text.encode())
        summary = bulkactions(data, *import_args(tmp_path / "c.csv")).json_last()
        assert summary["succeeded"] == len(cells)
        for row, cell in enumerate(cells, start=1):
            history = json.loads(bulkactions(data, "history", summary["action_id"], "--row", str(row), "--json").stdout)
            assert history["events"][0]["records"][0]["data"] == {"email": f"u{row - 1}@x.com", "first_name": cell}
