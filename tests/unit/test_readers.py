from __future__ import annotations

import json
from pathlib import Path

import pytest

from application.ports import InputError
from infrastructure.files.readers import FileSource

pytestmark = pytest.mark.unit

FIELDS = frozenset({"email", "first_name", "last_name"})


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_csv_rows_are_numbered_from_one_with_the_line_they_start_on(tmp_path: Path) -> None:
    path = _write(tmp_path, "c.csv", b'\xef\xbb\xbfemail,first_name\r\na@x.com,"Ann\nMarie"\r\nb@x.com,Bob\r\n')
    source = FileSource(path, allowed_fields=FIELDS)
    assert source.scan().total == 2
    records = list(source.records())
    assert [(r.row, r.line) for r in records] == [(1, 2), (2, 4)]
    assert records[0].data == {"email": "a@x.com", "first_name": "Ann\nMarie"}


def test_a_csv_row_with_the_wrong_number_of_fields_fails_alone(tmp_path: Path) -> None:
    path = _write(tmp_path, "c.csv", b"email,first_name\na@x.com\nb@x.com,Bob\n")
    records = list(FileSource(path).records())
    assert records[0].parse_error == "row has 1 fields, the header has 2"
    assert records[1].data == {"email": "b@x.com", "first_name": "Bob"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"email,first_name\n", "has no records"),
        (b"email,shoe_size\na@x.com,9\n", "unknown column(s) shoe_size"),
        (b"email,email\na,b\n", "repeats column(s) email"),
        (b",,\n1,2,3\n", "has no header row"),
        (b"email\n\x00\x01\x02", "binary file"),
        (b"email\ncaf\xe9@x.com\n", "not valid UTF-8"),
        (b"\xff\xfee\x00m\x00", "UTF-16"),
    ],
)
def test_unusable_csv_files_are_rejected_with_a_reason(tmp_path: Path, content: bytes, message: str) -> None:
    path = _write(tmp_path, "bad.csv", content)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        FileSource(path, allowed_fields=FIELDS).scan()


def test_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        FileSource(tmp_path / "nope.csv").scan()


def test_an_unknown_extension_asks_for_a_format(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--format"):
        FileSource(_write(tmp_path, "x.txt", b"a"))


def test_json_lines_skip_blank_lines_and_fail_bad_lines_alone(tmp_path: Path) -> None:
    path = _write(tmp_path, "r.jsonl", b'{"email": "a@x.com"}\n\n{bad\n[1]\n{"email": "b@x.com"}\n')
    records = list(FileSource(path).records())
    assert [(r.row, r.line) for r in records] == [(1, 1), (2, 3), (3, 4), (4, 5)]
    assert records[1].parse_error.startswith("invalid JSON")
    assert records[2].parse_error == "expected a JSON object, got list"
    assert records[3].data == {"email": "b@x.com"}


def test_a_json_array_is_streamed_element_by_element(tmp_path: Path) -> None:
    body = b"[\n" + b",\n".join(b'{"email": "u%d@x.com", "n": %d}' % (i, i) for i in range(5000)) + b"\n]"
    source = FileSource(_write(tmp_path, "r.json", body))
    assert source.scan().total == 5000
    records = list(source.records())
    assert records[4999].data == {"email": "u4999@x.com", "n": 4999}
    assert (records[0].line, records[4999].line) == (2, 5001)


def test_line_numbers_of_pretty_printed_records_hold_across_read_blocks(tmp_path: Path) -> None:
    # indent=2 puts "[" on line 1 and each 2-field record on 4 lines: "{", 2 fields, "}"
    records = [{"email": f"u{i}@x.com", "n": i} for i in range(6000)]  # about 270 KB: five blocks
    source = FileSource(_write(tmp_path, "p.json", json.dumps(records, indent=2).encode()))
    lines = [record.line for record in source.records()]
    assert lines == [2 + 4 * i for i in range(6000)]


def test_a_number_split_across_read_blocks_is_read_whole(tmp_path: Path) -> None:
    padding = b" " * (65536 - 3)
    path = _write(tmp_path, "n.json", b"[" + padding + b"12345, {}]")
    records = list(FileSource(path).records())
    assert records[0].parse_error == "expected a JSON object, got int"
    assert len(records) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"email": 1}', "one array"),
        (b'[{"a": 1} {"b": 2}]', "expected ','"),
        (b'[{"a": 1},', "not closed"),
        (b'[{"a": 1}] x', "after the JSON array"),
    ],
)
def test_broken_json_arrays_are_rejected(tmp_path: Path, content: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        FileSource(_write(tmp_path, "r.json", content)).scan()
