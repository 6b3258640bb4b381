"""The intake of request bodies: the multipart spooler (fields kept, the file streamed
to disk, the cap enforced while streaming, formats told from the field, the name or the
part's type) and the JSON body (spooled, then split into its members and a JSON-lines
file of its records)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from api.http.json_body import split_json_body
from api.http.multipart import UploadSpooler
from api.http.problems import ProblemError
from api.http.spool import spool_capped
from application.ports.inputs import InputError
from infrastructure.files.readers import FileSource

pytestmark = pytest.mark.unit
BOUNDARY = "b0undary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def body(*parts: tuple[str, str | None, str | None, bytes]) -> bytes:
    out = b""
    for name, filename, mime, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        if mime:
            out += f"Content-Type: {mime}\r\n".encode()
        out += b"\r\n" + content + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


async def pieces(data: bytes, size: int = 7) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def spool(tmp_path: Path, data: bytes, cap: int = 10_000) -> UploadSpooler:
    spooler = UploadSpooler(tmp_path, CONTENT_TYPE, cap)
    asyncio.run(spooler.consume(pieces(data)))
    return spooler


def test_fields_are_kept_and_the_file_is_streamed_to_a_spool_file(tmp_path: Path) -> None:
    csv = b"email\n" + b"".join(f"u{i}@example.com\n".encode() for i in range(200))
    spooler = spool(
        tmp_path,
        body(
            ("entity", None, None, b"contact"),
            ("action", None, None, b"insert"),
            ("file", "../../etc/people.csv", "text/csv", csv),
        ),
    )
    assert spooler.fields == {"entity": "contact", "action": "insert"}
    assert spooler.path is not None and spooler.path.parent == tmp_path
    assert spooler.path.read_bytes() == csv
    assert spooler.filename == "people.csv"  # no directory parts from the client
    assert spooler.file_format() == "csv"


def test_a_body_over_the_cap_is_refused_with_413_and_leaves_no_spool_file(tmp_path: Path) -> None:
    with pytest.raises(ProblemError) as refused:
        spool(tmp_path, body(("file", "big.csv", "text/csv", b"x" * 5000)), cap=1000)
    assert refused.value.status == 413
    assert not any(tmp_path.iterdir())


def test_an_unknown_form_field_is_refused_with_422(tmp_path: Path) -> None:
    with pytest.raises(ProblemError) as refused:
        spool(tmp_path, body(("colour", None, None, b"red"), ("file", "a.csv", "text/csv", b"email\n")))
    assert refused.value.status == 422 and "colour" in refused.value.detail


def test_a_form_field_given_twice_is_a_400_naming_it_and_leaves_no_spool_file(tmp_path: Path) -> None:
    with pytest.raises(ProblemError) as refused:
        spool(
            tmp_path,
            body(
                ("entity", None, None, b"contact"),
                ("file", "a.csv", "text/csv", b"email\na@example.com\n"),
                ("entity", None, None, b"company"),
            ),
        )
    assert (refused.value.status, refused.value.detail) == (400, "form field 'entity' is given twice")
    assert not any(tmp_path.iterdir())


def test_a_body_cut_before_its_closing_boundary_is_a_400_and_leaves_no_spool_file(tmp_path: Path) -> None:
    whole = body(("entity", None, None, b"contact"), ("file", "a.csv", "text/csv", b"email\na@example.com\n"))
    for cut in (3, 10, len(f"--{BOUNDARY}--\r\n") + 5):
        with pytest.raises(ProblemError) as refused:
            spool(tmp_path, whole[:-cut])
        assert refused.value.status == 400 and "closing boundary" in refused.value.detail
        assert not any(tmp_path.iterdir())


def test_a_body_that_ends_with_its_closing_boundary_without_crlf_is_whole(tmp_path: Path) -> None:
    whole = body(("entity", None, None, b"contact"), ("file", "a.csv", "text/csv", b"email\na@example.com\n"))
    assert spool(tmp_path, whole[:-2]).fields == {"entity": "contact"}


def test_a_malformed_multipart_body_is_a_400(tmp_path: Path) -> None:
    with pytest.raises(ProblemError) as refused:
        spool(tmp_path, b"--" + BOUNDARY.encode() + b"\r\nno headers end here")
    assert refused.value.status in (400, 422)


@pytest.mark.parametrize(
    ("filename", "mime", "declared", "expected"),
    [
        ("a.jsonl", None, None, "jsonl"),
        ("a.ndjson", None, None, "jsonl"),
        ("a.JSON", None, None, "json"),
        ("upload", "application/x-ndjson", None, "jsonl"),
        ("a.txt", None, "csv", "csv"),
        ("Export.XLSX", None, None, "xlsx"),
        ("upload", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", None, "xlsx"),
        ("a.tsv", None, None, "csv"),
    ],
)
def test_the_format_comes_from_the_field_the_name_or_the_type(
    tmp_path: Path, filename: str, mime: str | None, declared: str | None, expected: str
) -> None:
    parts = [("file", filename, mime, b"{}")]
    if declared:
        parts.append(("format", None, None, declared.encode()))
    assert spool(tmp_path, body(*parts)).file_format() == expected


@pytest.mark.parametrize(
    ("filename", "mime", "declared"),
    [
        ("a.xls", "application/vnd.ms-excel", None),  # the old binary Excel format: save it as .xlsx
        ("a.csv", None, "xml"),
    ],
)
def test_an_unsupported_file_type_is_a_415(
    tmp_path: Path, filename: str, mime: str | None, declared: str | None
) -> None:
    parts = [("file", filename, mime, b"x")]
    if declared:
        parts.append(("format", None, None, declared.encode()))
    with pytest.raises(ProblemError) as refused:
        spool(tmp_path, body(*parts)).file_format()
    assert refused.value.status == 415


def test_a_non_multipart_content_type_is_a_415(tmp_path: Path) -> None:
    with pytest.raises(ProblemError) as refused:
        UploadSpooler(tmp_path, "text/csv", 100)
    assert refused.value.status == 415


def test_a_json_body_over_the_cap_is_refused_as_soon_as_it_passes_it(tmp_path: Path) -> None:
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        while True:
            sent += 100
            yield b"x" * 100

    path = tmp_path / "body.json"
    with pytest.raises(ProblemError) as refused:
        asyncio.run(spool_capped(endless(), path, 1000))
    assert refused.value.status == 413
    assert sent == 1100  # stopped at the first chunk past the cap
    assert not path.exists()


def _split(tmp_path: Path, body: bytes) -> tuple[dict[str, object], list[dict[str, object]], list[dict[str, str]]]:
    raw = tmp_path / "body.json"
    raw.write_bytes(body)
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    split = split_json_body(raw, spool)
    lines = split.records_path.read_text().splitlines()
    assert split.records == len(lines) + len(split.errors)
    return split.members, [json.loads(line) for line in lines], split.errors


def test_the_records_of_a_json_body_become_json_lines_wherever_they_come(tmp_path: Path) -> None:
    records = [{"email": f"u{i}@x.com", "tags": [i, {"n": i}]} for i in range(3000)]
    for body in (
        {"entity": "contact", "records": records, "action": "insert", "options": {"chunk_size": 10}},
        {"records": records, "options": {"chunk_size": 10}, "entity": "contact", "action": "insert"},
    ):
        members, lines, errors = _split(tmp_path, json.dumps(body, indent=1).encode())
        assert members == {"entity": "contact", "action": "insert", "options": {"chunk_size": 10}}
        assert lines == records
        assert errors == []


def test_records_that_are_not_objects_are_named_in_the_errors(tmp_path: Path) -> None:
    _, lines, errors = _split(tmp_path, b'{"records": [{"a": 1}, 2, [3], {"b": 4}]}')
    assert lines == [{"a": 1}, {"b": 4}]
    assert [e["location"] for e in errors] == ["records.1", "records.2"]


def test_a_records_member_that_is_not_an_array_is_left_among_the_members(tmp_path: Path) -> None:
    members, lines, _ = _split(tmp_path, b'{"entity": "contact", "records": "x"}')
    assert members == {"entity": "contact", "records": "x"}
    assert lines == []


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{not json", "member name"),
        (b'[{"email": "a@x.com"}]', "one JSON object"),
        (b'{"records": [{"a": 1}], "records": [{"b": 2}]}', "given twice"),
        (b'{"entity": "a", "entity": "b"}', "given twice"),
        (b'{"records": [{"a": NaN}]}', "NaN"),
        (b'{"records": [{"a": 1}]} trailing', "unexpected data"),
        (b'{"records": [{"a": 1}, ]}', "invalid JSON"),
        (b'{"records": [{"a": 1}}', "expected ','"),
        ('{"records": [{"a": "é"}]}'.encode("latin-1"), "UTF-8"),
    ],
)
def test_malformed_json_bodies_are_input_errors_and_leave_no_spool_file(tmp_path: Path, body: bytes, says: str) -> None:
    raw = tmp_path / "body.json"
    raw.write_bytes(body)
    spool = tmp_path / "spool"
    spool.mkdir()
    with pytest.raises(InputError, match=says):
        split_json_body(raw, spool)
    assert not any(spool.iterdir())


def test_the_scan_made_while_splitting_is_the_scan_of_the_records_file(tmp_path: Path) -> None:
    raw = tmp_path / "body.json"
    raw.write_text(json.dumps({"entity": "contact", "records": [{"email": f"u{i}@x.com"} for i in range(2500)]}))
    split = split_json_body(raw, tmp_path)
    assert split.scan == FileSource(split.records_path, "jsonl").scan()
    assert split.scan.total == 2500


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"records": [{"a": 1}, {"email": "\\ud800"}]}', r"line 1 holds a lone UTF-16 surrogate .*\(in records.1\)"),
        (b'{"entity": "\\udc00", "records": [{"a": 1}]}', "lone UTF-16 surrogate"),
        (b'{"options": {"match_by": "\\ud800"}, "records": [{"a": 1}]}', r"lone UTF-16 surrogate .*\(in options\)"),
        (b'{"records": [{"n": ' + b"1" * 10_000 + b"}]}", "10000 digits, which is out of range"),
        (b'{"options": {"chunk_size": ' + b"1" * 10_000 + b"}}", "10000 digits, which is out of range"),
        (
            b'{"records": [' + b'{"a": ' * 10_000 + b"1" + b"}" * 10_000 + b"]}",
            r"deeper than 32 levels \(in records.0\)",
        ),
        (b'{"options": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", "nested deeper than 32 levels"),
        (b'{"records": [' + b"[" * 33 + b"]" * 33 + b"]}", "nested deeper than 32 levels"),
    ],
    ids=[
        "surrogate-in-a-record",
        "surrogate-in-entity",
        "surrogate-in-options",
        "10000-digits-in-a-record",
        "10000-digits-in-options",
        "record-10000-deep",
        "options-10000-deep",
        "record-33-deep",
    ],
)
def test_a_json_body_holding_values_the_event_store_cannot_hold_is_an_input_error(
    tmp_path: Path, body: bytes, says: str
) -> None:
    raw = tmp_path / "body.json"
    raw.write_bytes(body)
    spool = tmp_path / "spool"
    spool.mkdir()
    with pytest.raises(InputError, match=says):
        split_json_body(raw, spool)
    assert not any(spool.iterdir())


def test_records_and_options_that_repeat_a_key_are_named_in_the_errors(tmp_path: Path) -> None:
    records = b'[{"a": 1}, {"a": 1, "a": 2}, {"b": {"c": 1, "c": 2}}]'
    body = b'{"options": {"chunk_size": 5, "chunk_size": 6}, "records": ' + records + b"}"
    raw = tmp_path / "body.json"
    raw.write_bytes(body)
    spool = tmp_path / "spool"
    spool.mkdir()
    split = split_json_body(raw, spool)
    assert split.members["options"] == {"chunk_size": 6}
    assert (split.records, split.scan.total, split.records_path.read_text()) == (3, 1, '{"a":1}\n')
    assert split.errors == [
        {
            "location": "options",
            "message": "the key 'chunk_size' is given twice in one object",
            "code": "duplicate_field",
        },
        {"location": "records.1", "message": "the key 'a' is given twice in one object", "code": "duplicate_field"},
        {"location": "records.2", "message": "the key 'c' is given twice in one object", "code": "duplicate_field"},
    ]
