"""A retry's input: a corrected copy of an action's failed rows, as its results CSV
(``GET .../results/failed.csv``, ``bulkactions results ID failed``) exports them.

Each record names the row of the retried action it corrects (the ``row`` column); the
other columns the export puts before the input (line, outcome, entity id, errors, ...)
and after it (``other_input``) are read and dropped, so the rest is the record itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from application.ports.inputs import InputError, InputRecord, InputScan, InputSource

# The columns a results CSV puts before the input's fields, and the one after them.
RESULT_LINK_COLUMNS = ("row", "line", "outcome", "entity_id", "op", "errors", "reason", "duplicate_of_row")
OTHER_INPUT_COLUMN = "other_input"
RETRY_LINK_COLUMNS = frozenset((*RESULT_LINK_COLUMNS, OTHER_INPUT_COLUMN))


class RetrySource:
    """An input file of corrected failed rows: each record linked to the row it
    corrects (``InputRecord.retry_of_row``), without the export's own columns."""

    def __init__(self, inner: InputSource) -> None:
        self.inner = inner
        self.name = inner.name
        self.format = inner.format

    def describe(self) -> dict[str, Any]:
        return {**self.inner.describe(), "name": self.name}

    def scan(self) -> InputScan:
        """The file's scan; every record must name the row it corrects."""
        scan = self.inner.scan()
        for _ in self.records():
            pass
        return scan

    def records(self) -> Iterator[InputRecord]:
        for record in self.inner.records():
            yield self._linked(record)

    def _linked(self, record: InputRecord) -> InputRecord:
        where = f"{self.name}: record {record.row}" + (f" (line {record.line})" if record.line is not None else "")
        if record.data is None:
            raise InputError(f"{where} cannot be read, so it names no row to retry: {record.parse_error}")
        data = {name: value for name, value in record.data.items() if name not in RETRY_LINK_COLUMNS}
        return InputRecord(record.row, record.line, data, retry_of_row=_row_number(record.data.get("row"), where))


def _row_number(value: Any, where: str) -> int:
    """The ``row`` cell: the row number of the retried action (text in a CSV)."""
    if isinstance(value, bool) or value is None or value == "":
        raise InputError(f"{where} has no 'row': keep the row column of the failed rows' export")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise InputError(f"{where}: row {value!r} is not a row number") from None
    if number < 1:
        raise InputError(f"{where}: row {value!r} is not a row number")
    return number
