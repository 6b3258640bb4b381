"""Rows of an Excel workbook (.xlsx), streamed with openpyxl's read-only mode.

Why openpyxl and not python-calamine (bench/xlsx_readers.py, docs/benchmarks.md): on a
1M-row sheet calamine reads the whole sheet into memory before the first row (peak RSS
grows with the sheet), while openpyxl's read-only mode parses the sheet's XML as it
goes, at a lower speed. Its memory is not quite flat: besides the workbook's shared
strings table (which every xlsx reader holds whole), openpyxl keeps every parsed row
element, emptied, until the sheet is closed: about 80 bytes a row (docs/benchmarks.md).

Each row comes with its number as Excel shows it (the first row is 1), its cells as
the text a person sees: text as it is, whole numbers without a decimal point (``42``,
not ``42.0``), other numbers in their shortest exact form (``0.1``), TRUE / FALSE,
dates (cells formatted as dates) as ISO dates (``2024-03-01``, or
``2024-03-01T09:30:00`` with a time of day), times as ``09:30:00``, formulas as the
value Excel last computed (stored in the file). A number format (thousands
separators, currency, percent, leading zeros) is not applied: the number is written
plainly.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError

from application.ports.inputs import InputError

_MAX_EXACT_INT = 2**53


def rows(path: Path, name: str, sheet: str | None) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells as text) of every row of the sheet (the first one by default)."""
    # Imported here, when an xlsx is read: importing openpyxl takes 0.3 s and 4 MB that
    # every process reading a CSV or JSON input (workers included) would pay for nothing.
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        stream = path.open("rb")
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    with stream:
        try:
            book = load_workbook(stream, read_only=True, data_only=True)
        except (zipfile.BadZipFile, InvalidFileException, KeyError, ParseError, OSError) as exc:
            raise InputError(f"{name} is not an Excel .xlsx workbook ({exc})") from None
        try:
            worksheet = _sheet(book, name, sheet)
            cells = worksheet.iter_rows(min_row=1, values_only=True)
            for number, values in enumerate(cells, start=1):
                yield number, [_text(v) for v in values]
        except ParseError as exc:
            raise InputError(f"{name}: the sheet is not readable ({exc})") from None
        finally:
            book.close()


def _sheet(book: Any, name: str, sheet: str | None) -> Any:
    if sheet is None:
        if not book.worksheets:
            raise InputError(f"{name} has no worksheet")
        return book.worksheets[0]
    if sheet not in book.sheetnames:
        raise InputError(f"{name} has no sheet {sheet!r} (its sheets: {', '.join(map(repr, book.sheetnames))})")
    found = book[sheet]
    if not hasattr(found, "iter_rows"):
        raise InputError(f"{name}: {sheet!r} is a chart, not a worksheet")
    return found


def _text(value: Any) -> str:
    """A cell's value as the text the import stores (see the module's docstring)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < _MAX_EXACT_INT else repr(value)
    if isinstance(value, datetime):
        if value.time() == time(0):
            return value.date().isoformat()
        return value.isoformat(timespec="seconds" if not value.microsecond else "auto")
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return str(value)
