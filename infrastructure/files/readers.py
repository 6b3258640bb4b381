"""Streaming readers for CSV, JSON-lines and JSON-array files.

Nothing is read whole into memory: ``scan`` reads the file once to reject it up front
(encoding, header, structure) and to count and hash it, and ``records`` streams it
again. A row that cannot be parsed on its own (wrong number of CSV fields, a JSON
line that is not an object) is not fatal: it becomes a record with a parse error and
fails on its own. Rows are numbered from 1 in input order; ``line`` is the physical
line where the row starts (the CSV header is line 1).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from application.ports.inputs import InputError, InputRecord, InputScan
from infrastructure.files.json_stream import JsonTextStream
from infrastructure.files.repeated_keys import DUPLICATE_FIELD, repeated_key, repeated_key_message
from infrastructure.files.storable import MAX_NESTING, nested_deeper_than_limit

FORMATS = ("csv", "jsonl", "json")
_BLOCK = 1 << 16
_SNIFF = 8192
csv.field_size_limit(1 << 24)


def detect_format(path: Path, declared: str | None) -> str:
    if declared:
        if declared not in FORMATS:
            raise InputError(f"unknown format {declared!r} (use one of: {', '.join(FORMATS)})")
        return declared
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("csv", "jsonl", "json"):
        return suffix
    if suffix == "ndjson":
        return "jsonl"
    raise InputError(f"cannot tell the format of {path.name!r} from its extension; pass --format csv|jsonl|json")


class _HashingReader(io.RawIOBase):
    """Binary reader that hashes and counts what passes through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.sha.update(data)
        self.size += n
        return n


def _check_start(head: bytes, name: str) -> None:
    if not head:
        raise InputError(f"{name} is empty")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputError(f"{name} is UTF-16; save it as UTF-8")
    nul = head.find(b"\x00")
    if nul >= 0:
        raise InputError(f"{name} looks like a binary file (NUL byte at offset {nul}), not text")


def _check_path_is_text(path: Path) -> None:
    """The path is stored (``describe``) in the event store's JSON, which holds UTF-8
    only: a name of other bytes (read as lone surrogates) is refused before anything."""
    try:
        str(path.resolve()).encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"the path {str(path)!r} is not valid UTF-8; rename the file or its folder") from None


def _decode_error(name: str, exc: UnicodeDecodeError, consumed: int) -> InputError:
    return InputError(
        f"{name} is not valid UTF-8 (byte 0x{exc.object[exc.start]:02x} near byte offset {consumed + exc.start})"
    )


class FileInputs:
    """Opens input files (the application's ``InputFiles``)."""

    def open(self, path: str, fmt: str | None, allowed_fields: frozenset[str]) -> FileSource:
        return FileSource(path, fmt, allowed_fields=allowed_fields)


class FileSource:
    """A CSV, JSON-lines or JSON-array file on disk."""

    def __init__(
        self, path: Path | str, fmt: str | None = None, *, allowed_fields: frozenset[str] | None = None
    ) -> None:
        self.path = Path(path)
        _check_path_is_text(self.path)
        self.name = self.path.name
        self.format = detect_format(self.path, fmt)
        self.allowed_fields = allowed_fields

    def describe(self) -> dict[str, Any]:
        return {"kind": "file", "name": self.name, "path": str(self.path.resolve()), "format": self.format}

    def _open_text(self) -> tuple[_HashingReader, io.TextIOWrapper]:
        try:
            raw = self.path.open("rb")
        except FileNotFoundError:
            raise InputError(f"no such file: {self.path}") from None
        except IsADirectoryError:
            raise InputError(f"{self.path} is a directory, not a file") from None
        except OSError as exc:
            raise InputError(f"cannot read {self.path}: {exc.strerror}") from None
        head = raw.read(_SNIFF)
        raw.seek(0)
        try:
            _check_start(head, self.name)
        except InputError:
            raw.close()
            raise
        hashing = _HashingReader(raw)
        text = io.TextIOWrapper(io.BufferedReader(hashing, _BLOCK), encoding="utf-8-sig", errors="strict", newline="")
        return hashing, text

    def scan(self) -> InputScan:
        hashing, text = self._open_text()
        total = 0
        try:
            with text:
                for _ in self._parse(text, hashing):
                    total += 1
        except UnicodeDecodeError as exc:
            raise _decode_error(self.name, exc, max(hashing.size - _BLOCK, 0)) from None
        if total == 0:
            raise InputError(f"{self.name} has no records")
        return InputScan(total=total, sha256=hashing.sha.hexdigest(), size=hashing.size)

    def records(self) -> Iterator[InputRecord]:
        hashing, text = self._open_text()
        try:
            with text:
                yield from self._parse(text, hashing)
        except UnicodeDecodeError as exc:
            raise _decode_error(self.name, exc, max(hashing.size - _BLOCK, 0)) from None

    def _parse(self, text: io.TextIOWrapper, hashing: _HashingReader) -> Iterator[InputRecord]:
        if self.format == "csv":
            return self._csv(text)
        if self.format == "jsonl":
            return self._jsonl(text)
        return self._json_array(text)

    # ------------------------------------------------------------------ CSV

    def _csv(self, text: io.TextIOWrapper) -> Iterator[InputRecord]:
        reader = csv.reader(text, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise InputError(f"{self.name} is empty") from None
        except csv.Error as exc:
            raise InputError(f"{self.name}: line 1: {exc}") from None
        columns = self._checked_header(header)
        width = len(columns)
        row = 0
        line = reader.line_num + 1
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise InputError(f"{self.name}: line {reader.line_num}: {exc}") from None
            if not values or (len(values) == 1 and values[0] == "" and width > 1):
                line = reader.line_num + 1
                continue  # blank line
            row += 1
            if len(values) != width:
                yield InputRecord(row, line, None, f"row has {len(values)} fields, the header has {width}")
            else:
                yield InputRecord(row, line, dict(zip(columns, values, strict=True)))
            line = reader.line_num + 1

    def _checked_header(self, header: list[str]) -> list[str]:
        columns = [c.strip() for c in header]
        if not columns or all(c == "" for c in columns):
            raise InputError(f"{self.name} has no header row (the first line must name the columns)")
        if "" in columns:
            raise InputError(f"{self.name}: header column {columns.index('') + 1} has no name")
        duplicates = sorted({c for c in columns if columns.count(c) > 1})
        if duplicates:
            raise InputError(f"{self.name}: header repeats column(s) {', '.join(duplicates)}")
        if self.allowed_fields is not None:
            unknown = [c for c in columns if c not in self.allowed_fields]
            if unknown:
                raise InputError(
                    f"{self.name}: unknown column(s) {', '.join(unknown)}"
                    f" (allowed: {', '.join(sorted(self.allowed_fields))})"
                )
        return columns

    # ------------------------------------------------------------------ JSON lines

    def _jsonl(self, text: io.TextIOWrapper) -> Iterator[InputRecord]:
        """Every line on its own: orjson reads only what it can write again (no lone
        surrogate, integers past 64 bits as floats, up to 1024 levels); deeper than
        ``MAX_NESTING`` or a repeated key fails the line like invalid JSON does."""
        row = 0
        for line_no, line in enumerate(text, start=1):
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                if not line.strip():
                    continue  # a blank line (tested only here: most lines are not blank)
                row += 1
                yield InputRecord(row, line_no, None, f"invalid JSON: {exc}")
                continue
            row += 1
            if type(value) is dict and line.count(":") == len(value) and "[" not in line:
                # The usual record, told in two scans of the line: as many colons as keys
                # means no key is repeated and any nested object is empty (see
                # repeated_keys), so without arrays it nests at most 2 levels.
                yield InputRecord(row, line_no, value)
            else:
                yield _json_record(row, line_no, value, line)

    # ------------------------------------------------------------------ JSON array

    def _json_array(self, text: io.TextIOWrapper) -> Iterator[InputRecord]:
        stream = JsonTextStream(text, self.name)
        if stream.peek() != "[":
            raise InputError(f"{self.name}: a JSON file must hold one array of records ([{{...}}, ...])")
        for row, (line, value) in enumerate(stream.array_items("the records"), start=1):
            if not isinstance(value, dict):
                yield InputRecord(row, line, None, f"expected a JSON object, got {type(value).__name__}")
            elif stream.repeated_key is not None:
                yield InputRecord(row, line, None, repeated_key_message(stream.repeated_key), DUPLICATE_FIELD)
            else:
                yield InputRecord(row, line, value)
        stream.end("the JSON array")


def _json_record(row: int, line_no: int, value: Any, text: str) -> InputRecord:
    """A record read by orjson from ``text``, or the reason it fails on its own."""
    if not isinstance(value, dict):
        return InputRecord(row, line_no, None, f"expected a JSON object, got {type(value).__name__}")
    if nested_deeper_than_limit(value, text):
        return InputRecord(row, line_no, None, f"the record is nested deeper than {MAX_NESTING} levels")
    key = repeated_key(value, text)
    if key is not None:
        return InputRecord(row, line_no, None, repeated_key_message(key), DUPLICATE_FIELD)
    return InputRecord(row, line_no, value)
