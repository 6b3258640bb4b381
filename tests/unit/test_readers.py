from __future__ import annotations

import json
import random
import re
from pathlib import Path
from uuid import uuid4

import pytest
from eventsourcing.persistence import JSONTranscoder

from application.ports.inputs import InputError, InputRecord
from domain.bulk_action import BulkChunk
from infrastructure.events.mapper import FastMapper
from infrastructure.files.readers import FileSource
from infrastructure.files.storable import MAX_NESTING

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
        (b"\xff\xfee\x00m\x00\x00", "not valid utf-16: it ends inside a character"),
    ],
)
def test_unusable_csv_files_are_rejected_with_a_reason(tmp_path: Path, content: bytes, message: str) -> None:
    path = _write(tmp_path, "bad.csv", content)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        FileSource(path, allowed_fields=FIELDS).scan()


def test_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        FileSource(tmp_path / "nope.csv").scan()


def test_a_file_whose_name_is_not_utf8_is_refused_before_its_name_is_stored(tmp_path: Path) -> None:
    path = _write(tmp_path, "caf\udce9.csv", b"email\na@x.com\n")  # b"caf\xe9.csv" on disk
    with pytest.raises(
        InputError, match=r"the path .*caf\\udce9\.csv' is not valid UTF-8; rename the file or its folder"
    ):
        FileSource(path)


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


# ---------------------------------------------------------------- values the event store cannot hold


def _deep(levels: int, leaf: str = "1") -> str:
    """A record nested ``levels`` deep, counting the record itself: {"a": {"a": ... leaf}}."""
    return '{"a": ' * levels + leaf + "}" * levels


def _stored(records: list[InputRecord]) -> bytes:
    """The records encoded as the event store encodes a ChunkQueued event."""
    event = BulkChunk.queue(uuid4(), 0, 1, [r.as_stored() for r in records]).collect_events()[0]
    return bytes(FastMapper(JSONTranscoder()).to_stored_event(event).state)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'[{"email": "a@x.com"},\n{"first_name": "\\ud800"}]', "line 2 holds a lone UTF-16 surrogate"),
        (b'[{"email": "a@x.com", "\\uDFFF": 1}]', "lone UTF-16 surrogate"),
        (b'[{"n": ' + b"1" * 10_000 + b"}]", r"10000 digits.* out of range"),
        (b"[" + _deep(10_000).encode() + b"]", "nested deeper than 32 levels"),
        (b"[" + b"[" * 10_000 + b"]" * 10_000 + b"]", "nested deeper than 32 levels"),
        (b"[" + _deep(33).encode() + b"]", "nested deeper than 32 levels"),
    ],
    ids=["surrogate", "surrogate-key", "10000-digits", "objects-10000-deep", "arrays-10000-deep", "33-deep"],
)
def test_json_arrays_holding_values_the_event_store_cannot_hold_are_refused_up_front(
    tmp_path: Path, content: bytes, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        FileSource(_write(tmp_path, "r.json", content)).scan()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"first_name": "\\ud800"}', "surrogate"),
        ('{"n": ' + "1" * 10_000 + "}", "infinity"),
        (_deep(10_000), "depth"),
        (_deep(300), "nested deeper than 32 levels"),
        (_deep(33), "nested deeper than 32 levels"),
        ('{"a": ' + "[" * 40 + "]" * 40 + "}", "nested deeper than 32 levels"),
    ],
    ids=["surrogate", "10000-digits", "10000-deep", "300-deep", "33-deep", "arrays-41-deep"],
)
def test_a_json_line_the_event_store_cannot_hold_fails_alone_and_the_rest_is_stored(
    tmp_path: Path, line: str, message: str
) -> None:
    content = f'{{"email": "a@x.com"}}\n{line}\n{{"email": "b@x.com"}}\n'.encode()
    source = FileSource(_write(tmp_path, "r.jsonl", content))
    assert source.scan().total == 3
    records = list(source.records())
    assert [r.data for r in records] == [{"email": "a@x.com"}, None, {"email": "b@x.com"}]
    assert re.search(message, records[1].parse_error or "")
    assert records[1].error_code == "unparseable"
    _stored(records)  # does not raise


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_a_record_nested_as_deep_as_the_limit_is_read_and_can_be_stored(tmp_path: Path, fmt: str) -> None:
    record = _deep(MAX_NESTING, '"x"')
    content = f"[{record}]" if fmt == "json" else record + "\n"
    [read] = FileSource(_write(tmp_path, f"r.{fmt}", content.encode())).records()
    assert read.parse_error is None
    assert _stored([read])


@pytest.mark.parametrize(
    "content",
    [
        b'[{"a": "\\ud83d\\ude00", "b": "\\\\ud800"}]',  # a surrogate pair, an escaped backslash
        b'[{"n": 18446744073709551615, "m": -9223372036854775808, "f": 123456789012345678901234567890}]',
        b'[{"a": [[[[{"b": [1, 2, {"c": null}]}]]]]}]',
    ],
)
def test_whatever_the_scan_of_a_json_array_accepts_can_be_stored(tmp_path: Path, content: bytes) -> None:
    source = FileSource(_write(tmp_path, "r.json", content))
    assert source.scan().total == 1
    assert _stored(list(source.records()))


# ---------------------------------------------------------------- repeated keys


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
@pytest.mark.parametrize(
    ("record", "key"),
    [
        ('{"email": "a@x.com", "email": "b@x.com"}', "email"),
        ('{"email" : "a@x.com", "first_name": "A", "email"\t:"b@x.com"}', "email"),
        ('{"email": "a@x.com", "tags": {"k": 1, "k": 2}}', "k"),
        ('{"email": "a@x.com", "tags": [{"k": 1}, {"j": 1, "j": 2}]}', "j"),
    ],
)
def test_a_record_that_repeats_a_key_fails_alone_naming_it(tmp_path: Path, fmt: str, record: str, key: str) -> None:
    good = '{"email": "c@x.com"}'
    content = f"[{good},\n{record},\n{good}]" if fmt == "json" else f"{good}\n{record}\n{good}\n"
    source = FileSource(_write(tmp_path, f"r.{fmt}", content.encode()))
    assert source.scan().total == 3
    records = list(source.records())
    assert [r.data for r in records] == [{"email": "c@x.com"}, None, {"email": "c@x.com"}]
    assert (records[1].row, records[1].line, records[1].error_code) == (2, 2, "duplicate_field")
    assert records[1].parse_error == f"the key {key!r} is given twice in one object"
    assert records[1].as_stored() == {"row": 2, "line": 2, "error": records[1].parse_error, "code": "duplicate_field"}


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
@pytest.mark.parametrize(
    "record",
    [
        '{"email": "a@x.com", "note": "say \\"x\\": now", "url": "http://x.com:80"}',
        '{"email" : "a@x.com", "first_name" :"A", "tags": {"email": 1, "k": {"email": 2}}}',
        '{"email": "a@x.com", "tags": [{"k": 1}, {"k": 2}], "empty": {}}',
    ],
)
def test_keys_that_are_not_repeated_within_one_object_are_not_mistaken_for_repeats(
    tmp_path: Path, fmt: str, record: str
) -> None:
    content = f"[{record}]" if fmt == "json" else record + "\n"
    [read] = FileSource(_write(tmp_path, f"r.{fmt}", content.encode())).records()
    assert read.data == json.loads(record)


def test_a_read_error_is_stored_with_its_code_only_when_it_is_not_the_usual_one() -> None:
    assert InputRecord(3, 4, None, "bad").as_stored() == {"row": 3, "line": 4, "error": "bad"}
    assert InputRecord(3, 4, None, "twice", "duplicate_field").as_stored() == {
        "row": 3,
        "line": 4,
        "error": "twice",
        "code": "duplicate_field",
    }
    assert InputRecord(3, 4, {"a": 1}).as_stored() == {"row": 3, "line": 4, "data": {"a": 1}}


# ---------------------------------------------------------------- CSV cells kept as they are


def test_line_breaks_inside_quoted_csv_cells_are_kept_as_the_file_has_them(tmp_path: Path) -> None:
    cells = ["Ann\r\nMarie", "Bo\rB", "Cy\nD", "\r\n", "E\r\n\r\nF"]
    for eol in ("\n", "\r\n"):
        # the cells come after the first 64 KiB block read
        filler = "".join(f"f{i}@x.com,F{eol}" for i in range(7300))
        text = f"email,first_name{eol}" + filler + "".join(f'u{i}@x.com,"{c}"{eol}' for i, c in enumerate(cells))
        records = list(FileSource(_write(tmp_path, "c.csv", text.encode())).records())
        assert [r.data["first_name"] for r in records[-len(cells) :] if r.data] == cells


# ---------------------------------------------------------------- scan and second read agree


_STRINGS = [
    '"a"',
    '"x:y"',
    '"\\ud800"',
    '"\\udc00x"',
    '"\\ud83d\\ude00"',
    '"\\\\ud800"',
    '"q\\"  :"',
    '"\\u00e9"',
    '"[{"',
]
_NUMBERS = ["0", "-1", "18446744073709551615", "18446744073709551616", "-9223372036854775809", "1" * 21, "9" * 400]
_KEYS = ['"email"', '"a"', '"b"', '"c:d"', '"\\ud800"', '"k\\""']


def _random_object(rnd: random.Random, depth: int) -> str:
    def value() -> str:
        if depth > rnd.choice([3, 10, 33, 40]) or rnd.random() < 0.4:
            return rnd.choice([*_STRINGS, *_NUMBERS, "1e400", "1.5e308", "true", "null"])
        if rnd.random() < 0.5:
            return "[" + ", ".join(value() for _ in range(rnd.randint(0, 3))) + "]"
        return _random_object(rnd, depth + 1)

    members = [f"{rnd.choice(_KEYS)}{rnd.choice(['', ' ', chr(9)])}:{value()}" for _ in range(rnd.randint(0, 4))]
    return "{" + ", ".join(members) + "}"


def _repeats_a_key(text: str) -> bool:
    repeats = []

    def pairs(items: list[tuple[str, object]]) -> None:
        repeats.extend([1] if len({k for k, _ in items}) < len(items) else [])

    json.loads(text, object_pairs_hook=pairs, parse_int=str, parse_float=str, parse_constant=str)
    return bool(repeats)


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_whatever_the_scan_accepts_is_read_again_the_same_and_can_be_stored(tmp_path: Path, fmt: str) -> None:
    rnd = random.Random(7)
    accepted = refused = repeated = 0
    for _ in range(300):
        record = _random_object(rnd, 1)
        content = f'[{{"email": "g@x.com"}},\n{record}]' if fmt == "json" else f'{{"email": "g@x.com"}}\n{record}\n'
        source = FileSource(_write(tmp_path, f"r.{fmt}", content.encode()))
        try:
            total = source.scan().total
        except InputError:
            assert fmt == "json"  # a JSON line fails alone
            refused += 1
            continue
        records = list(source.records())
        assert len(records) == total == 2
        assert _stored(records)
        if records[1].data is not None or records[1].error_code == "duplicate_field":
            assert (records[1].error_code == "duplicate_field") == _repeats_a_key(record), record
        repeated += records[1].error_code == "duplicate_field"
        accepted += 1
    assert accepted > 100 and repeated > 5 and (refused > 50 or fmt == "jsonl")
