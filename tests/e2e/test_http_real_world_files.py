"""Real-world files over HTTP: an xlsx upload with a column mapping and a sheet, a
Windows-1252 semicolon CSV, a UTF-16 export, JSON records with their keys mapped;
exact counts, the mapping in the record's history, refusals as 422 problems."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openpyxl import Workbook

from tests.e2e.http_server import ApiServer, create_account, spool_is_empty, wait_finished

pytestmark = pytest.mark.e2e

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    api = ApiServer(tmp_path_factory.mktemp("http-files")).start()
    yield api
    api.stop()


@pytest.fixture(scope="module")
def client(server: ApiServer) -> Iterator[httpx.Client]:
    with server.client(create_account(server.data_dir, "files")) as c:
        yield c


def _upload(client: httpx.Client, name: str, content: bytes, mime: str = "text/csv", **fields: str) -> httpx.Response:
    data = {"entity": "contact", "action": "insert", **fields}
    return client.post("/v1/bulk-actions", data=data, files={"file": (name, content, mime)})


def _finished(client: httpx.Client, sent: httpx.Response) -> dict[str, Any]:
    assert sent.status_code == 202, sent.text
    return wait_finished(client, sent.json()["id"])


def _counts(action: dict[str, Any]) -> tuple[int, int, int, int]:
    counts = action["counts"]
    return counts["total"], counts["succeeded"], counts["failed"], counts["skipped"]


def _workbook() -> bytes:
    book = Workbook()
    first = book.active
    assert first is not None
    first.append(["not the data"])
    sheet = book.create_sheet("Leads")
    sheet.append(["Work E-mail", "Given Name", "Owner"])
    for n in range(1, 8):
        sheet.append([f"lead{n}@xlsx.example", f"L{n}", "me"])
    sheet.append(["broken", "B", "me"])  # Excel row 9
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_an_xlsx_upload_with_a_column_mapping_and_a_sheet(client: httpx.Client) -> None:
    mapping = json.dumps({"Work E-mail": "email", "given name": "first_name"})
    sent = _upload(
        client,
        "leads.xlsx",
        _workbook(),
        XLSX,
        sheet="Leads",
        column_mapping=mapping,
        ignore_columns=json.dumps(["owner"]),
    )
    action = _finished(client, sent)
    assert _counts(action) == (8, 7, 1, 0)

    failed = client.get(f"/v1/bulk-actions/{action['id']}/logs", params={"outcome": "failed"}).json()["items"]
    assert [(f["row"], f["line"]) for f in failed] == [(8, 9)]
    history = client.get(f"/v1/bulk-actions/{action['id']}/records/8/history").json()
    assert history["column_mapping"] == {"Work E-mail": "email", "Given Name": "first_name", "Owner": None}
    assert history["events"][0]["records"] == [{"row": 8, "line": 9, "data": {"email": "broken", "first_name": "B"}}]


def test_a_cp1252_semicolon_csv_is_read_in_its_encoding(client: httpx.Client) -> None:
    rows = "".join(f"ren{n}@cp.example;René {n};Größe\r\n" for n in range(1, 5))
    content = ("E-Mail;Vorname;Nachname\r\n" + rows).encode("cp1252")
    mapping = json.dumps({"E-Mail": "email", "Vorname": "first_name", "Nachname": "last_name"})

    refused = _upload(client, "de.csv", content, column_mapping=mapping)
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"] == (
        "de.csv is not valid UTF-8: byte 0xe9 at line 2, byte offset 44"
        " (name its encoding, for example cp1252 for a file saved by Excel on Windows)"
    )

    action = _finished(client, _upload(client, "de.csv", content, column_mapping=mapping, encoding="cp1252"))
    assert _counts(action) == (4, 4, 0, 0)
    audit = client.get("/v1/entities/contact/ren3@cp.example/history").json()
    assert audit["current"]["first_name"] == "René 3" and audit["current"]["last_name"] == "Größe"
    assert audit["changes"][0]["column_mapping"] == {
        "E-Mail": "email",
        "Vorname": "first_name",
        "Nachname": "last_name",
    }


def test_a_utf16_upload_with_tabs_and_a_named_delimiter(client: httpx.Client) -> None:
    content = "email\tfirst_name\r\nwide1@u16.example\tŻaneta\r\nwide2@u16.example\tÅsa\r\n".encode("utf-16")
    action = _finished(client, _upload(client, "wide.csv", content))
    assert _counts(action) == (2, 2, 0, 0)
    piped = b"email|first_name\npipe1@p.example|Ann\n"
    assert _counts(_finished(client, _upload(client, "p.csv", piped, delimiter="|"))) == (1, 1, 0, 0)


def test_json_records_with_their_keys_mapped_and_unknown_keys_dropped(client: httpx.Client) -> None:
    records = [{"Email Address": f"j{n}@json.example", "First": "J", "crm_id": n} for n in range(3)]
    body = {
        "entity": "contact",
        "action": "insert",
        "records": records,
        "options": {
            "column_mapping": {"email address": "email", "First": "first_name"},
            "ignore_unknown_columns": True,
        },
    }
    action = _finished(client, client.post("/v1/bulk-actions", json=body))
    assert _counts(action) == (3, 3, 0, 0)
    history = client.get(f"/v1/bulk-actions/{action['id']}/records/1/history").json()
    assert history["events"][0]["records"][0]["data"] == {"email": "j0@json.example", "first_name": "J"}
    assert history["column_mapping"] == {"email address": "email", "First": "first_name"}


@pytest.mark.parametrize(
    ("fields", "content", "says"),
    [
        (
            {"column_mapping": json.dumps({"Work": "email", "Home": "email"})},
            b"Work,Home\na@x.com,b@x.com\n",
            "ambiguous column mapping: columns 'Work' and 'Home' are both mapped onto email",
        ),
        ({}, b"Email,E-Mail\na@x.com,b@x.com\n", "x.csv: header repeats column(s) email"),
        ({"column_mapping": "[1]"}, b"email\na@x.com\n", "form field 'column_mapping' must be JSON like"),
        ({"ignore_unknown_columns": "yes"}, b"email\na@x.com\n", "ignore_unknown_columns is true or false"),
        ({"encoding": "klingon"}, b"email\na@x.com\n", "unknown encoding 'klingon'"),
        ({"sheet": "Nope"}, _workbook(), "x.csv has no sheet 'Nope'"),
    ],
    # Named, not made from the values: the workbook's bytes hold the time it was written,
    # and pytest-xdist refuses workers that collected different test ids.
    ids=[
        "ambiguous-mapping",
        "repeated-header",
        "mapping-not-json",
        "flag-not-boolean",
        "unknown-encoding",
        "no-sheet",
    ],
)
def test_a_mapping_or_dialect_that_cannot_work_is_a_422_and_creates_nothing(
    server: ApiServer, client: httpx.Client, fields: dict[str, str], content: bytes, says: str
) -> None:
    fmt = {"format": "xlsx"} if content.startswith(b"PK") else {}
    refused = _upload(client, "x.csv", content, **fields, **fmt)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["detail"].startswith(says)
    assert spool_is_empty(server.data_dir)


def test_an_ambiguous_json_mapping_is_a_422(client: httpx.Client) -> None:
    body = {
        "entity": "contact",
        "action": "insert",
        "records": [{"a": "x@y.com"}],
        "options": {"column_mapping": {"a": "email", "A ": "first_name"}},
    }
    refused = client.post("/v1/bulk-actions", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"] == "the column mapping names column 'A' twice"
