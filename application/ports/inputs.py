"""Inputs: a re-readable file of records, and the scratch index of its unique keys.

Each port has one contract test suite (``tests/contract``) run against every adapter.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

UNPARSEABLE = "unparseable"


class InputRecord(NamedTuple):
    """One record of an input: its data, or why it could not be read (``parse_error``,
    with its error code), which fails that record alone.

    A NamedTuple, not a frozen dataclass: one is made per input row, and a frozen
    dataclass's ``__init__`` (``object.__setattr__`` per field) cost 0.51 us against
    0.22 us, a sixth of reading a JSON line."""

    row: int
    line: int | None
    data: dict[str, Any] | None
    parse_error: str | None = None
    error_code: str = UNPARSEABLE
    retry_of_row: int | None = None  # a retry's record: the row of the retried action it corrects

    def as_stored(self) -> dict[str, Any]:
        stored: dict[str, Any]
        if self.parse_error is not None:
            stored = {"row": self.row, "line": self.line, "error": self.parse_error}
            if self.error_code != UNPARSEABLE:  # events stored before codes read the same
                stored["code"] = self.error_code
        else:
            stored = {"row": self.row, "line": self.line, "data": self.data}
        if self.retry_of_row is not None:
            stored["retry_of_row"] = self.retry_of_row
        return stored


@dataclass(frozen=True, slots=True)
class InputScan:
    total: int
    sha256: str
    size: int
    # How the header's columns became fields ({column as written: field, or None where
    # dropped}); None where nothing was mapped or dropped (see application.columns).
    columns: dict[str, str | None] | None = None


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """How to read an input beyond its format: which column becomes which field, which
    are dropped, and the text's dialect. The defaults read a file as before they existed."""

    column_mapping: tuple[tuple[str, str], ...] = ()  # (column as the user named it, field)
    ignore_columns: tuple[str, ...] = ()
    ignore_unknown_columns: bool = False
    delimiter: str | None = None  # None: detected (CSV)
    encoding: str | None = None  # None: UTF-8 (a UTF-16 byte-order mark is detected)
    sheet: str | None = None  # None: the first sheet (xlsx)

    def as_stored(self) -> dict[str, Any]:
        """The options that differ from the defaults, as stored with the source."""
        stored: dict[str, Any] = {}
        if self.column_mapping:
            stored["column_mapping"] = dict(self.column_mapping)
        if self.ignore_columns:
            stored["ignore_columns"] = list(self.ignore_columns)
        if self.ignore_unknown_columns:
            stored["ignore_unknown_columns"] = True
        for name in ("delimiter", "encoding", "sheet"):
            if getattr(self, name) is not None:
                stored[name] = getattr(self, name)
        return stored

    @classmethod
    def from_stored(cls, stored: dict[str, Any] | None) -> ReadOptions:
        stored = stored or {}
        return cls(
            tuple((stored.get("column_mapping") or {}).items()),
            tuple(stored.get("ignore_columns") or ()),
            bool(stored.get("ignore_unknown_columns")),
            stored.get("delimiter"),
            stored.get("encoding"),
            stored.get("sheet"),
        )


DEFAULT_READ = ReadOptions()


class InputSource(Protocol):
    """A re-readable input (a file on disk: an upload, a spooled JSON body, a CLI import)."""

    name: str
    format: str

    def scan(self) -> InputScan:
        """Read it all once, raising ``InputError`` on anything that would reject it."""
        ...

    def records(self) -> Iterator[InputRecord]: ...

    def describe(self) -> dict[str, Any]: ...


class KeyIndex(Protocol):
    """Remembers, for one input, the first row that named each unique key.

    Used while the input is stored, in input order, so that a key repeated in the
    input is skipped as a duplicate of its first row whatever order the chunks are
    processed in. Scratch state of one storing pass: rebuilt on resume.
    """

    def first_rows(self, keyed: Sequence[tuple[str, int]]) -> dict[int, int]:
        """Record (key, row) pairs; return {row: first_row} for rows seen before."""
        ...

    def close(self) -> None: ...


class InputFiles(Protocol):
    """Opens input files: a CSV, JSON-lines, JSON-array or xlsx file (``fmt`` None: told
    by the file's extension), whose columns (as ``options`` map them) must be among
    ``allowed_fields``."""

    def open(
        self, path: str, fmt: str | None, allowed_fields: frozenset[str], options: ReadOptions = DEFAULT_READ
    ) -> InputSource: ...


class InputError(Exception):
    """The input as a whole is unusable (encoding, header, format): nothing was created."""
