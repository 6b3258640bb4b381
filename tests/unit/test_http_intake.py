"""The multipart spooler: fields kept, the file streamed to disk, the cap enforced
while streaming, and formats told from the field, the name or the part's type."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from api.http.intake import UploadSpooler, read_capped
from api.http.problems import ProblemError

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
    assert spooler.path is not None and spooler.path.parent == tmp_path / "spool"
    assert spooler.path.read_bytes() == csv
    assert spooler.filename == "people.csv"  # no directory parts from the client
    assert spooler.file_format() == "csv"


def test_a_body_over_the_cap_is_refused_with_413_and_leaves_no_spool_file(tmp_path: Path) -> None:
    with pytest.raises(ProblemError) as refused:
        spool(tmp_path, body(("file", "big.csv", "text/csv", b"x" * 5000)), cap=1000)
    assert refused.value.status == 413
    assert not any((tmp_path / "spool").iterdir())


def test_an_unknown_form_field_is_refused_with_422(tmp_path: Path) -> None:
    with pytest.raises(ProblemError) as refused:
        spool(tmp_path, body(("colour", None, None, b"red"), ("file", "a.csv", "text/csv", b"email\n")))
    assert refused.value.status == 422 and "colour" in refused.value.detail


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
        ("a.xlsx", "application/vnd.ms-excel", None),
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


def test_a_json_body_over_the_cap_is_refused_as_soon_as_it_passes_it() -> None:
    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"x" * 100

    with pytest.raises(ProblemError) as refused:
        asyncio.run(read_capped(endless(), 1000))
    assert refused.value.status == 413
