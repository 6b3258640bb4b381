"""Real-world files through the CLI: an Excel export with its own column names, a
Windows-1252 semicolon CSV, a UTF-16 tab-separated export; exact counts, the mapping
in history and audit, and refusals (one line, exit 2, nothing created)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import Workbook

from tests.e2e.cli import bulkactions, import_args

pytestmark = pytest.mark.e2e


def _excel_export(path: Path) -> Path:
    """A CRM's export: its own column names, a notes column, a blank row, two sheets."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Summary"
    sheet.append(["this sheet is not the data"])
    data = book.create_sheet("Contacts")
    data.append(["E-mail Address", " first name ", "Company", "Notes", "Created"])
    for n in range(1, 11):
        data.append([f"person{n}@example.com", f"P{n}", f"c{n}.com", "vip", datetime(2024, 3, n)])
    data.append([])  # Excel row 12: blank, skipped
    data.append(["not-an-email", "Bad", "x.com", "", None])  # Excel row 13
    data.append(["PERSON1@example.com", "Dup", "x.com", "", None])  # Excel row 14
    book.save(path)
    return path


def test_an_excel_export_is_imported_with_its_columns_mapped_and_excels_row_numbers(tmp_path: Path) -> None:
    data = tmp_path / "data"
    path = _excel_export(tmp_path / "export.xlsx")
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"E-mail Address": "email"}))
    run = bulkactions(
        data,
        *import_args(path, "--sheet", "Contacts", "--map-file", str(mapping), "--map", "company=company_domain"),
        *("--ignore-column", "notes", "--ignore-column", "CREATED"),
    )
    assert run.code == 0, run.stderr
    summary = run.json_last()
    assert (summary["total"], summary["succeeded"], summary["failed"], summary["skipped"]) == (12, 10, 1, 1)

    action_id = summary["action_id"]
    outcomes = [json.loads(line) for line in bulkactions(data, "logs", action_id).lines]
    assert [(o["row"], o["line"], o["outcome"]) for o in outcomes[-2:]] == [(11, 13, "failed"), (12, 14, "skipped")]

    history = bulkactions(data, "history", action_id, "--row", "11")
    assert history.code == 0, history.stderr
    assert "  input (line 13):" in history.lines
    assert "      email = 'not-an-email'  (column 'E-mail Address')" in history.lines
    assert "      dropped column(s): 'Notes', 'Created'" in history.lines
    stored = json.loads(bulkactions(data, "history", action_id, "--row", "11", "--json").stdout)
    assert stored["column_mapping"] == {
        "E-mail Address": "email",
        "first name": "first_name",
        "Company": "company_domain",
        "Notes": None,
        "Created": None,
    }

    audit = bulkactions(data, "audit", "contact", "person3@example.com")
    assert audit.code == 0, audit.stderr
    assert (
        "      read from columns: 'E-mail Address' -> email, 'first name' -> first_name,"
        " 'Company' -> company_domain, 'Notes' dropped, 'Created' dropped"
    ) in audit.lines


def test_a_windows_1252_semicolon_file_is_read_in_its_encoding_and_refused_without_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    path = tmp_path / "excel-fr.csv"
    rows = [f"zoë{n}@exemple.fr;Zoë “{n}”;Müller" for n in range(1, 6)] + ["pas-un-email;Élodie;Dupré"]
    path.write_bytes(("Email;First Name;Last Name\r\n" + "\r\n".join(rows) + "\r\n").encode("cp1252"))

    refused = bulkactions(data, *import_args(path))
    assert refused.code == 2
    assert refused.stderr.strip() == (
        "bulkactions: error: excel-fr.csv is not valid UTF-8: byte 0xeb at line 2, byte offset 30"
        " (name its encoding, for example cp1252 for a file saved by Excel on Windows)"
    )
    assert not data.exists()

    run = bulkactions(data, *import_args(path, "--encoding", "cp1252"))
    assert run.code == 0, run.stderr
    summary = run.json_last()
    assert (summary["total"], summary["succeeded"], summary["failed"], summary["skipped"]) == (6, 5, 1, 0)
    audit = json.loads(bulkactions(data, "audit", "contact", "zoë2@exemple.fr", "--json").stdout)
    assert audit["current"]["first_name"] == "Zoë “2”"


def test_a_utf16_tab_separated_export_is_detected(tmp_path: Path) -> None:
    data = tmp_path / "data"
    path = tmp_path / "unicode-text.txt"
    lines = ["email\tfirst_name"] + [f"u{n}@x.com\tŁukasz {n}" for n in range(1, 4)]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-16"))
    run = bulkactions(data, *import_args(path, "--format", "csv"))
    assert run.code == 0, run.stderr
    summary = run.json_last()
    assert (summary["total"], summary["succeeded"], summary["failed"], summary["skipped"]) == (3, 3, 0, 0)


@pytest.mark.parametrize(
    ("content", "options", "message"),
    [
        (
            b"Work Email,E-Mail\na@x.com,b@x.com\n",
            ["--map", "Work Email=email"],
            "c.csv: columns 'Work Email' and 'E-Mail' both become field email (ambiguous); map or drop one of them",
        ),
        (
            b"Work Email,Home Email\na@x.com,b@x.com\n",
            ["--map", "Work Email=email", "--map", "home email=email"],
            "ambiguous column mapping: columns 'Work Email' and 'home email' are both mapped onto email;"
            " map one column onto each field",
        ),
        (b"email,Notes\na@x.com,x\n", [], "c.csv: unknown column(s) Notes (allowed: company_domain, email,"),
        (b"email\na@x.com\n", ["--map", "email"], "--map takes 'COLUMN=FIELD', not 'email'"),
        (b"email;x\na@x.com;1\n", ["--delimiter", "::"], "a delimiter is one character"),
    ],
)
def test_a_mapping_that_cannot_work_is_refused_up_front(
    tmp_path: Path, content: bytes, options: list[str], message: str
) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(content)
    run = bulkactions(tmp_path / "data", *import_args(path, *options))
    assert run.code == 2
    assert run.stderr.startswith(f"bulkactions: error: {message}"), run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "data").exists()


def test_unknown_columns_are_dropped_when_asked_and_the_options_are_part_of_the_request(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(b"Email|Owner|Stage\na@x.com|me|lead\nb@x.com|you|won\n")
    options = ("--ignore-unknown-columns", "--idempotency-key", "k1")
    run = bulkactions(tmp_path / "data", *import_args(path, *options))
    assert run.code == 0, run.stderr
    assert run.json_last()["succeeded"] == 2
    again = bulkactions(tmp_path / "data", *import_args(path, *options, "--delimiter", "|"))
    assert again.code == 2
    assert "the idempotency key 'k1' was used for a different request" in again.stderr
