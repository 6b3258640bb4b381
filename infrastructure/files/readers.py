"""Streaming readers for CSV, JSON-lines, JSON-array and xlsx files.

Nothing is read whole into memory: ``scan`` reads the file once to reject it up front
(encoding, header, structure) and to count and hash it, and ``records`` streams it
again. A row that cannot be parsed on its own (wrong number of CSV fields, a JSON
line that is not an object) is not fatal: it becomes a record with a parse error and
fails on its own. Rows are numbered from 1 in input order; ``line`` is the physical
line where the row starts (the CSV header is line 1; in an xlsx, the sheet's row
number as Excel shows it).

Text is UTF-8 unless the options name another encoding; a UTF-16 byte-order mark is
detected. A CSV's delimiter (``,`` ``;`` tab ``|``) is told by its header line unless
the options name it. Which column becomes which field: ``application.columns``.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from application.columns import ColumnPlan, ColumnRequest
from application.ports.inputs import DEFAULT_READ, InputError, InputRecord, InputScan, ReadOptions
from infrastructure.files import dialect, xlsx
from infrastructure.files.json_stream import JsonTextStream
from infrastructure.files.repeated_keys import DUPLICATE_FIELD, repeated_key, repeated_key_message
from infrastructure.files.storable import MAX_NESTING, nested_deeper_than_limit

FORMATS = ("csv", "jsonl", "json", "xlsx")
_BLOCK = 1 << 16
_SNIFF = 8192
csv.field_size_limit(1 << 24)


def detect_format(path: Path, declared: str | None) -> str:
    if declared:
        if declared not in FORMATS:
            raise InputError(f"unknown format {declared!r} (use one of: {', '.join(FORMATS)})")
        return declared
    suffix = path.suffix.lower().lstrip(".")
    if suffix in FORMATS:
        return suffix
    if suffix == "ndjson":
        return "jsonl"
    if suffix == "tsv":
        return "csv"
    raise InputError(f"cannot tell the format of {path.name!r} from its extension; pass --format csv|jsonl|json|xlsx")


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


def _check_start(head: bytes, name: str, encoding: str) -> None:
    if not head:
        raise InputError(f"{name} is empty")
    if head.startswith(b"PK\x03\x04"):
        raise InputError(f"{name} looks like a zip file (an Excel workbook?); name it .xlsx or pass --format xlsx")
    nul = head.find(b"\x00")
    if nul >= 0 and not dialect.is_wide(encoding):
        raise InputError(f"{name} looks like a binary file (NUL byte at offset {nul}), not text")


def _check_path_is_text(path: Path) -> None:
    """The path is stored (``describe``) in the event store's JSON, which holds UTF-8
    only: a name of other bytes (read as lone surrogates) is refused before anything."""
    try:
        str(path.resolve()).encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"the path {str(path)!r} is not valid UTF-8; rename the file or its folder") from None


class FileInputs:
    """Opens input files (the application's ``InputFiles``)."""

    def open(
        self, path: str, fmt: str | None, allowed_fields: frozenset[str], options: ReadOptions = DEFAULT_READ
    ) -> FileSource:
        return FileSource(path, fmt, allowed_fields=allowed_fields, options=options)


class FileSource:
    """A CSV, JSON-lines, JSON-array or xlsx file on disk."""

    def __init__(
        self,
        path: Path | str,
        fmt: str | None = None,
        *,
        allowed_fields: frozenset[str] | None = None,
        options: ReadOptions = DEFAULT_READ,
    ) -> None:
        self.path = Path(path)
        _check_path_is_text(self.path)
        self.name = self.path.name
        self.format = detect_format(self.path, fmt)
        self.allowed_fields = allowed_fields
        self.options = options
        self.encoding = dialect.checked_encoding(options.encoding)
        self.delimiter = dialect.checked_delimiter(options.delimiter)
        self.columns = ColumnRequest(options, allowed_fields)
        self.mapping: dict[str, str | None] | None = None  # the header's, once read
        self._last_scan: InputScan | None = None  # see scan

    def describe(self) -> dict[str, Any]:
        described = {"kind": "file", "name": self.name, "path": str(self.path.resolve()), "format": self.format}
        read = self.options.as_stored()
        return described | {"read": read} if read else described

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
        encoding = self.encoding or dialect.detected_encoding(head)
        try:
            _check_start(head, self.name, encoding)
        except InputError:
            raw.close()
            raise
        if self.format == "csv" and self.delimiter is None:
            self.delimiter = dialect.detected_delimiter(head, encoding)
        hashing = _HashingReader(raw)
        text = io.TextIOWrapper(io.BufferedReader(hashing, _BLOCK), encoding=encoding, errors="strict", newline="")
        return hashing, text

    def scan(self) -> InputScan:
        """Count the records, hash the bytes, read the header's mapping. A file is scanned
        again before it is stored (storing checks that the file is the one submitted, in
        the process that stores it: the source travels there with its last scan), and
        parsing costs far more than hashing (1M contacts: 2 CPU s to parse the CSV, 0.1 to
        hash it; an xlsx: about 100 to 0.02): the same bytes (same SHA-256 and size) give
        the last scan's answer without a parse."""
        if self._last_scan is not None and _file_digest(self.path) == (self._last_scan.sha256, self._last_scan.size):
            return self._last_scan
        self._last_scan = self._scan_xlsx() if self.format == "xlsx" else self._scan_text()
        return self._last_scan

    def _scan_text(self) -> InputScan:
        hashing, text = self._open_text()
        total = 0
        try:
            with text:
                if self.format == "csv":
                    total = self._csv_count(text)
                else:
                    for _ in self._parse(text):
                        total += 1
        except UnicodeDecodeError:
            raise self._decode_error(text.encoding) from None
        if total == 0:
            raise InputError(f"{self.name} has no records")
        mapping = self.mapping if self.format in ("csv", "xlsx") else self.columns.stored_mapping()
        return InputScan(total=total, sha256=hashing.sha.hexdigest(), size=hashing.size, columns=mapping)

    def records(self) -> Iterator[InputRecord]:
        if self.format == "xlsx":
            yield from self._tabular(xlsx.rows(self.path, self.name, self.options.sheet))
            return
        _, text = self._open_text()
        try:
            with text:
                yield from self._parse(text)
        except UnicodeDecodeError:
            raise self._decode_error(text.encoding) from None

    def _decode_error(self, encoding: str) -> InputError:
        return dialect.decode_error(self.path, self.name, encoding)

    def _parse(self, text: io.TextIOWrapper) -> Iterator[InputRecord]:
        if self.format == "csv":
            return self._csv(text)
        records = self._jsonl(text) if self.format == "jsonl" else self._json_array(text)
        return _renamed(records, self.columns) if self.columns.active else records

    def _scan_xlsx(self) -> InputScan:
        total = sum(1 for _ in self._tabular(xlsx.rows(self.path, self.name, self.options.sheet)))
        if total == 0:
            raise InputError(f"{self.name} has no records")
        sha256, size = _file_digest(self.path)
        return InputScan(total=total, sha256=sha256, size=size, columns=self.mapping)

    # ------------------------------------------------------------------ CSV

    def _csv_header(self, text: io.TextIOWrapper) -> tuple[Any, ColumnPlan]:
        """A CSV reader past the header, and the header's plan."""
        reader = csv.reader(text, strict=True, delimiter=self.delimiter or ",")
        try:
            header = next(reader)
        except StopIteration:
            raise InputError(f"{self.name} is empty") from None
        except csv.Error as exc:
            raise InputError(f"{self.name}: line 1: {exc}") from None
        return reader, self._plan(header)

    def _csv_count(self, text: io.TextIOWrapper) -> int:
        """How many records ``_csv`` makes of the file: its rows that are not blank (a
        row of the wrong width is a record that fails). Counted without building them:
        the scan runs before anything else starts, and building each record's dict
        tripled its time (1M contacts: 3.06 s, 0.97 s counted)."""
        reader, plan = self._csv_header(text)
        width = len(plan.fields)
        total = 0
        try:
            for values in reader:
                if values and not (values[0] == "" and _blank(values, True, width)):
                    total += 1
        except csv.Error as exc:
            raise InputError(f"{self.name}: line {reader.line_num}: {exc}") from None
        return total

    def _csv(self, text: io.TextIOWrapper) -> Iterator[InputRecord]:
        reader, plan = self._csv_header(text)
        if not plan.renames_only:
            yield from self._csv_dropping(reader, plan)
            return
        columns = [field or "" for field in plan.fields]  # every column is a field here
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
            if not values or (values[0] == "" and _blank(values, True, width)):
                line = reader.line_num + 1
                continue  # blank line
            row += 1
            if len(values) != width:
                yield InputRecord(row, line, None, f"row has {len(values)} fields, the header has {width}")
            else:
                yield InputRecord(row, line, dict(zip(columns, values, strict=True)))
            line = reader.line_num + 1

    def _plan(self, header: list[str]) -> ColumnPlan:
        plan = self.columns.plan(header, self.name)
        self.mapping = plan.mapping
        return plan

    def _csv_dropping(self, reader: Any, plan: ColumnPlan) -> Iterator[InputRecord]:
        """The CSV rows of a header with dropped columns: only the kept cells are read."""
        rows = ((reader.line_num, values) for values in reader)
        return self._rows_dropping(_csv_rows(rows, self.name, reader), plan, exact_width=True)

    def _tabular(self, rows: Iterator[tuple[int, list[str]]]) -> Iterator[InputRecord]:
        """Records of a sheet's rows (line, cells): its first non-blank row is the header."""
        for _, header in rows:
            if all(cell == "" for cell in header):
                continue  # blank rows above the header
            while header and header[-1] == "":
                header.pop()  # a sheet's empty cells right of the header are no columns
            plan = self._plan(header)
            yield from self._rows_dropping(rows, plan, exact_width=False)
            return
        raise InputError(f"{self.name} is empty")

    def _rows_dropping(
        self, rows: Iterator[tuple[int, list[str]]], plan: ColumnPlan, *, exact_width: bool
    ) -> Iterator[InputRecord]:
        width = len(plan.fields)
        kept = [(i, field) for i, field in enumerate(plan.fields) if field is not None]
        row = 0
        for line, values in rows:
            if not values or (values[0] == "" and _blank(values, exact_width, width)):
                continue  # a blank line, a blank sheet row
            row += 1
            if len(values) != width and (exact_width or any(v != "" for v in values[width:])):
                yield InputRecord(row, line, None, f"row has {len(values)} fields, the header has {width}")
                continue
            cells = values if len(values) >= width else values + [""] * (width - len(values))
            yield InputRecord(row, line, {field: cells[i] for i, field in kept})

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


def _renamed(records: Iterator[InputRecord], columns: ColumnRequest) -> Iterator[InputRecord]:
    """JSON records with their keys renamed (or dropped) as the column options ask."""
    for record in records:
        if record.data is None:
            yield record
            continue
        renamed = columns.record(record.data)
        if isinstance(renamed, str):
            yield InputRecord(record.row, record.line, None, renamed, DUPLICATE_FIELD)
        else:
            yield InputRecord(record.row, record.line, renamed)


def _blank(values: list[str], csv_row: bool, width: int) -> bool:
    if csv_row:
        return len(values) == 1 and width > 1
    return all(v == "" for v in values)


def _csv_rows(rows: Iterator[tuple[int, list[str]]], name: str, reader: Any) -> Iterator[tuple[int, list[str]]]:
    """(the line a CSV row starts on, its cells)."""
    line = reader.line_num + 1
    while True:
        try:
            _, values = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InputError(f"{name}: line {reader.line_num}: {exc}") from None
        yield line, values
        line = reader.line_num + 1


def _file_digest(path: Path) -> tuple[str, int]:
    sha = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            sha.update(block)
            size += len(block)
    return sha.hexdigest(), size


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
