"""A multipart/form-data upload, streamed: the small form fields kept, the ``file`` part
written to a spool file, the whole body counted against the cap.

The body is read only while it is well-formed, and what it may hold is bounded:
- each form field at most once (a repeated one is a 400 naming it: no silent
  last-wins), any other name refused, so a body holds at most ``len(FORM_FIELDS) + 1``
  parts and is refused at the first one past that, before the rest is read;
- each part's headers: at most ``MAX_PART_HEADERS`` headers of ``MAX_PART_HEADER_BYTES``
  each (python-multipart's own checks, set here so they do not change with it);
- a form field's value: ``MAX_FIELD_BYTES``;
- the body must end with its closing boundary: one cut short (a Content-Length
  shorter than what was sent, a client that stopped) is a 400, never an upload of
  whatever arrived (python-multipart's ``finalize`` does not check this).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

import orjson
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from api.http.problems import ProblemError
from api.http.spool import spool_path, too_large
from application.ports.inputs import ReadOptions

FORM_FIELDS = (
    "entity",
    "action",
    "match_by",
    "chunk_size",
    "format",
    "callback_url",
    "dry_run",
    "link_companies",
    "column_mapping",
    "ignore_columns",
    "ignore_unknown_columns",
    "delimiter",
    "encoding",
    "sheet",
)
MAX_FIELD_BYTES = 1024
# A mapping of a wide export's columns is longer than the other fields.
_LONG_FIELDS = {"column_mapping": 65536, "ignore_columns": 65536}
MAX_PART_HEADERS = 8
MAX_PART_HEADER_BYTES = 4096
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_CONTENT_TYPES = {
    _XLSX: "xlsx",
    "text/csv": "csv",
    "application/csv": "csv",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/x-jsonlines": "jsonl",
    "application/json": "json",
}
_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".xlsx": "xlsx"}


def unsupported(detail: str) -> ProblemError:
    return ProblemError(415, "unsupported-media-type", "Unsupported Media Type", detail)


def malformed(detail: str) -> ProblemError:
    return ProblemError(400, "malformed-body", "Bad Request", f"malformed multipart body: {detail}")


def invalid(detail: str) -> ProblemError:
    return ProblemError(422, "invalid-request", "Invalid Request", detail)


class UploadSpooler:
    def __init__(self, spool_folder: Path, content_type: str, cap: int) -> None:
        kind, options = parse_options_header(content_type)
        boundary = options.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise unsupported("send application/json or multipart/form-data with a boundary")
        self.spool_folder, self.cap, self.size = spool_folder, cap, 0
        self.fields: dict[str, str] = {}
        self.path: Path | None = None
        self.filename: str | None = None
        self.file_type: str | None = None
        self._out: IO[bytes] | None = None
        self._seen: set[str] = set()
        self._headers: dict[str, bytes] = {}
        self._field: tuple[str, bytearray] | None = None
        self._header_name = b""
        self._header_value = b""
        self._error: ProblemError | None = None
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_header_field": self._header_field,
                "on_header_value": self._header_val,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_done,
            },
            max_header_count=MAX_PART_HEADERS,
            max_header_size=MAX_PART_HEADER_BYTES,
        )

    async def consume(self, chunks: AsyncIterator[bytes]) -> None:
        """Read the whole body; on any refusal, or a client gone, no spool file is left."""
        try:
            await self._read(chunks)
        except BaseException:
            self.discard()
            raise
        finally:
            if self._out is not None:
                self._out.close()
                self._out = None

    async def _read(self, chunks: AsyncIterator[bytes]) -> None:
        try:
            async for chunk in chunks:
                self.size += len(chunk)
                if self.size > self.cap:
                    raise too_large(self.cap)
                self.parser.write(chunk)
                if self._error is not None:
                    raise self._error
            self.parser.finalize()
        except ProblemError:
            raise
        except Exception as exc:  # python-multipart's parse errors; the client gone
            raise malformed(str(exc) or type(exc).__name__) from None
        if self._error is not None:
            raise self._error
        if self.parser.state != MultipartState.END:
            raise malformed("the body ends before its closing boundary; nothing was created")

    def discard(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None

    def _refuse(self, problem: ProblemError) -> None:
        """Stop at the first problem: later parts of the same chunk change nothing."""
        if self._error is None:
            self._error = problem

    def _part_begin(self) -> None:
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_val(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_name.decode("latin-1").lower()] = self._header_value
        self._header_name, self._header_value = b"", b""

    def _headers_done(self) -> None:
        if self._error is not None:
            return
        _, options = parse_options_header(self._headers.get("content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name in self._seen:
            self._refuse(ProblemError(400, "duplicate-field", "Bad Request", f"form field {name!r} is given twice"))
            return
        self._seen.add(name)
        if name == "file":
            self._open_file(options)
        elif name in FORM_FIELDS:
            self._field = (name, bytearray())
        else:
            self._refuse(invalid(f"unknown form field {name!r} (known: file, {', '.join(FORM_FIELDS)})"))

    def _open_file(self, options: dict[bytes, bytes]) -> None:
        filename = options.get(b"filename", b"upload").decode("utf-8", "replace")
        self.filename = os.path.basename(filename) or "upload"
        self.file_type = parse_options_header(self._headers.get("content-type", b""))[0].decode("latin-1")
        self.path = spool_path(self.spool_folder, "upload")
        self._out = self.path.open("wb")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._error is not None:
            return
        if self._out is not None:
            self._out.write(data[start:end])
        elif self._field is not None:
            self._field[1].extend(data[start:end])
            if len(self._field[1]) > _LONG_FIELDS.get(self._field[0], MAX_FIELD_BYTES):
                self._refuse(invalid(f"form field {self._field[0]!r} is too long"))

    def _part_end(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        elif self._field is not None:
            name, value = self._field
            try:
                self.fields[name] = value.decode("utf-8").strip()
            except UnicodeDecodeError:
                self._refuse(invalid(f"form field {name!r} is not UTF-8"))
            self._field = None

    def file_format(self) -> str:
        """The upload's format: the ``format`` field, else the file name, else its type."""
        declared = self.fields.get("format")
        if declared:
            if declared not in ("csv", "jsonl", "json", "xlsx"):
                raise unsupported(f"unknown format {declared!r} (use csv, jsonl, json or xlsx)")
            return declared
        suffix = Path(self.filename or "").suffix.lower()
        found = _SUFFIXES.get(suffix) or _CONTENT_TYPES.get(self.file_type or "")
        if found is None:
            raise unsupported(
                f"cannot tell the format of {self.filename!r} ({self.file_type or 'no type'});"
                " send a .csv, .jsonl, .json or .xlsx file, or the form field format"
            )
        return found


def upload_read_options(fields: dict[str, str]) -> ReadOptions:
    """The form fields that say how to read the file: ``column_mapping`` (a JSON object of
    column names to fields), ``ignore_columns`` (a JSON array of names),
    ``ignore_unknown_columns`` (true / false), ``delimiter``, ``encoding``, ``sheet``."""
    mapping = _json_field(fields, "column_mapping", dict, '{"E-mail Address": "email"}')
    ignored = _json_field(fields, "ignore_columns", list, '["Notes"]')
    if not all(isinstance(v, str) for v in [*mapping.values(), *ignored]):
        raise invalid("column_mapping and ignore_columns hold column names and fields as strings")
    flag = fields.get("ignore_unknown_columns", "").lower()
    if flag not in ("", "true", "false"):
        raise invalid(f"ignore_unknown_columns is true or false, not {flag!r}")
    return ReadOptions(
        tuple(mapping.items()),
        tuple(ignored),
        flag == "true",
        fields.get("delimiter") or None,
        fields.get("encoding") or None,
        fields.get("sheet") or None,
    )


def _json_field(fields: dict[str, str], name: str, kind: type, example: str) -> Any:
    text = fields.get(name)
    if not text:
        return kind()
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, kind):
        raise invalid(f"form field {name!r} must be JSON like {example}")
    return value
