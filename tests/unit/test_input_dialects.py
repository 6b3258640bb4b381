"""Real-world files: column mapping, dropped columns, delimiters, encodings and xlsx,
read by the file reader (``FileSource``) with the application's column rule."""

from __future__ import annotations

import pickle
import re
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from application.columns import column_key
from application.ports.inputs import InputError, ReadOptions
from domain.entities.registry import ENTITY_TYPES
from infrastructure.files import xlsx
from infrastructure.files.readers import FileSource

pytestmark = pytest.mark.unit

FIELDS = frozenset({"email", "first_name", "last_name", "company_domain"})


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _read(path: Path, **options: object) -> tuple[FileSource, list[tuple[int, int | None, object]]]:
    source = FileSource(path, allowed_fields=FIELDS, options=ReadOptions(**options))  # type: ignore[arg-type]
    source.scan()
    return source, [(r.row, r.line, r.data if r.parse_error is None else r.parse_error) for r in source.records()]


def test_header_names_match_fields_whatever_their_case_spaces_or_bom(tmp_path: Path) -> None:
    path = _write(tmp_path, "c.csv", b"\xef\xbb\xbf\xef\xbb\xbf E-Mail ,FIRST NAME,LastName\na@x.com,Ann,Lee\n")
    source, records = _read(path)
    assert records == [(1, 2, {"email": "a@x.com", "first_name": "Ann", "last_name": "Lee"})]
    assert source.scan().columns == {"E-Mail": "email", "FIRST NAME": "first_name", "LastName": "last_name"}


def test_no_two_fields_of_an_entity_are_matched_by_the_same_column_name() -> None:
    for etype in ENTITY_TYPES.values():
        fields = etype.field_names() | {"id"}
        assert len({column_key(f) for f in fields}) == len(fields), etype.name


def test_an_exact_header_records_no_mapping(tmp_path: Path) -> None:
    source, _ = _read(_write(tmp_path, "c.csv", b"email,first_name\na@x.com,Ann\n"))
    assert source.scan().columns is None


def test_mapped_columns_become_fields_and_ignored_ones_are_dropped(tmp_path: Path) -> None:
    path = _write(tmp_path, "c.csv", b"E-mail Address,Notes,Company,Owner\na@x.com,vip,x.com,me\n,,,\n")
    source, records = _read(
        path,
        column_mapping=(("e-mail address ", "Email"), ("company", "company_domain")),
        ignore_columns=("NOTES",),
        ignore_unknown_columns=True,
    )
    assert records == [
        (1, 2, {"email": "a@x.com", "company_domain": "x.com"}),
        (2, 3, {"email": "", "company_domain": ""}),
    ]
    assert source.scan().columns == {
        "E-mail Address": "email",
        "Notes": None,
        "Company": "company_domain",
        "Owner": None,
    }


@pytest.mark.parametrize(
    ("header", "options", "message"),
    [
        (
            b"A,B",
            {"column_mapping": (("A", "email"), ("B", "email"))},
            "columns 'A' and 'B' are both mapped onto email",
        ),
        (
            b"Work Email,Email",
            {"column_mapping": (("work email", "email"),)},
            "columns 'Work Email' and 'Email' both become field email",
        ),
        (b"email,EMAIL", {}, "header repeats column(s) email"),
        (b"email,Phone Number", {}, "unknown column(s) Phone Number"),
        (b"email", {"column_mapping": (("Emial", "email"),)}, "c.csv has no column(s) 'Emial' (its columns: 'email')"),
        (b"email,x", {"ignore_columns": ("y",)}, "has no column(s) 'y'"),
        (b"email,x", {"column_mapping": (("x", "shoe_size"),)}, "maps 'x' onto 'shoe_size', which is not a field"),
        (b"email,x", {"column_mapping": (("x", "email"), ("X", "first_name"))}, "names column 'X' twice"),
        (b"email,x", {"column_mapping": (("x", "first_name"),), "ignore_columns": ("x",)}, "both mapped and ignored"),
        (b"email,,x", {"ignore_columns": ("x",)}, "header column 2 has no name"),
    ],
)
def test_an_unusable_or_ambiguous_header_is_refused_up_front_with_the_names(
    tmp_path: Path, header: bytes, options: dict[str, object], message: str
) -> None:
    path = _write(tmp_path, "c.csv", header + b"\n" + b"a," * header.count(b",") + b"a\n")
    with pytest.raises(InputError, match=re.escape(message)):
        FileSource(path, allowed_fields=FIELDS, options=ReadOptions(**options)).scan()  # type: ignore[arg-type]


@pytest.mark.parametrize("delimiter", [";", "\t", "|", ","])
def test_the_delimiter_is_told_by_the_header_line(tmp_path: Path, delimiter: str) -> None:
    text = f'email{delimiter}first_name\na@x.com{delimiter}"Lee, Ann; Jr"\n'
    _, records = _read(_write(tmp_path, "c.csv", text.encode()))
    assert records == [(1, 2, {"email": "a@x.com", "first_name": "Lee, Ann; Jr"})]


def test_a_named_delimiter_wins_over_detection(tmp_path: Path) -> None:
    path = _write(tmp_path, "c.csv", b"email;first_name\na@x.com;Ann\n")
    _, records = _read(path, delimiter=",", ignore_unknown_columns=True)
    assert records == [(1, 2, {})]  # one column named "email;first_name", dropped
    _, records = _read(path, delimiter="semicolon")
    assert records == [(1, 2, {"email": "a@x.com", "first_name": "Ann"})]
    with pytest.raises(InputError, match="a delimiter is one character"):
        _read(path, delimiter=";;")


def test_cp1252_and_latin1_files_are_read_in_the_named_encoding(tmp_path: Path) -> None:
    path = _write(tmp_path, "c.csv", "email;first_name\nzoe@x.com;Zoë “Z” Ñúñez\n".encode("cp1252"))
    _, records = _read(path, encoding="cp1252")
    assert records == [(1, 2, {"email": "zoe@x.com", "first_name": "Zoë “Z” Ñúñez"})]
    _, records = _read(_write(tmp_path, "l.csv", "email\nzoë@x.com\n".encode("latin-1")), encoding="latin-1")
    assert records == [(1, 2, {"email": "zoë@x.com"})]


def test_utf16_with_a_byte_order_mark_is_detected(tmp_path: Path) -> None:
    for codec in ("utf-16", "utf-16-be"):
        data = ("\ufeff" if codec.endswith("be") else "") + "email\tfirst_name\r\nzoë@x.com\tZoë\r\n"
        _, records = _read(_write(tmp_path, f"{codec}.csv", data.encode(codec)))
        assert records == [(1, 2, {"email": "zoë@x.com", "first_name": "Zoë"})]


@pytest.mark.parametrize(
    ("data", "encoding", "message"),
    [
        (b"email\na@x.com\nJos\xe9@x.com\n", None, "is not valid UTF-8: byte 0xe9 at line 3, byte offset 17"),
        (b"email\na@x.com\n" + b"b@x.com\n" * 20000 + b"\x81", "cp1252", "not valid cp1252: byte 0x81 at line 20003"),
        (
            "email\n".encode("utf-16") + b"\x00\xd8a\x00",
            None,
            "is not valid utf-16: byte 0x00 at line 2, byte offset 14",
        ),
        (b"email\na@x.com\n", "klingon", "unknown encoding 'klingon'"),
    ],
)
def test_a_file_not_valid_in_its_encoding_is_refused_with_the_line_and_byte(
    tmp_path: Path, data: bytes, encoding: str | None, message: str
) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        _read(_write(tmp_path, "c.csv", data), encoding=encoding)


def _workbook(path: Path) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Export"
    sheet.append(["E-mail", "First Name", "employee_count", "founded", "opens", "active", None])
    sheet.append(["a@x.com", "Ann", 42, datetime(2024, 3, 1), time(9, 30), True])
    sheet.append([])
    sheet.append(["b@x.com", 7, 1.5, datetime(2024, 3, 1, 9, 30), None, False, "stray"])
    sheet.append(["c@x.com", None, 12.0, date(1999, 12, 31)])
    other = book.create_sheet("Second")
    other.append(["email"])
    other.append(["z@x.com"])
    book.save(path)
    return path


def test_xlsx_rows_come_with_excels_row_numbers_and_cells_as_text(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "export.xlsx")
    source = FileSource(path, options=ReadOptions(column_mapping=(("E-mail", "email"),)))
    assert source.scan().total == 3
    records = [(r.row, r.line, r.data or r.parse_error) for r in source.records()]
    assert records == [
        (1, 2, {"email": "a@x.com", "First Name": "Ann", "employee_count": "42", "founded": "2024-03-01",
                "opens": "09:30:00", "active": "TRUE"}),
        (2, 4, "row has 7 fields, the header has 6"),
        (3, 5, {"email": "c@x.com", "First Name": "", "employee_count": "12", "founded": "1999-12-31",
                "opens": "", "active": ""}),
    ]  # fmt: skip


def test_another_sheet_is_read_by_name_and_a_missing_one_is_refused(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "export.xlsx")
    source = FileSource(path, options=ReadOptions(sheet="Second"))
    assert [r.data for r in source.records()] == [{"email": "z@x.com"}]
    with pytest.raises(InputError, match="has no sheet 'Nope' \\(its sheets: 'Export', 'Second'\\)"):
        FileSource(path, options=ReadOptions(sheet="Nope")).scan()
    with pytest.raises(InputError, match=r"is not an Excel \.xlsx workbook"):
        FileSource(_write(tmp_path, "fake.xlsx", b"email\na@x.com\n")).scan()


def test_an_unchanged_csv_is_parsed_once_however_often_it_is_scanned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, "c.csv", b"E-mail;Name\na@x.com;Ann\nb@x.com;Bob\n")
    source = FileSource(path, options=ReadOptions(column_mapping=(("E-mail", "email"), ("Name", "first_name"))))
    first = source.scan()
    parsed: list[object] = []
    parse = FileSource._csv_header  # what counting and reading the records both start with

    def counted(self: FileSource, text: Any) -> Any:
        parsed.append(text)
        return parse(self, text)

    monkeypatch.setattr(FileSource, "_csv_header", counted)
    stored = pickle.loads(pickle.dumps(source))  # as the source travels to the storing process
    assert stored.scan() == first and source.scan() == first
    assert parsed == []
    assert [r.data for r in stored.records()] == [
        {"email": "a@x.com", "first_name": "Ann"},
        {"email": "b@x.com", "first_name": "Bob"},
    ]
    assert len(parsed) == 1

    path.write_bytes(b"E-mail;Name\nc@x.com;Cy\n")  # changed bytes: parsed again
    changed = stored.scan()
    assert (changed.total, changed.sha256 != first.sha256, len(parsed)) == (1, True, 2)


def test_an_unchanged_xlsx_is_parsed_once_however_often_it_is_scanned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _workbook(tmp_path / "export.xlsx")
    source = FileSource(path)
    first = source.scan()
    opened: list[object] = []
    parse = xlsx.rows

    def counted(*args: Any) -> Any:
        opened.append(args)
        return parse(*args)

    monkeypatch.setattr(xlsx, "rows", counted)
    stored = pickle.loads(pickle.dumps(source))  # as the source travels to the storing process
    assert stored.scan() == first
    assert source.scan() == first
    assert opened == []
    assert [r.row for r in stored.records()] == [1, 2, 3]
    assert len(opened) == 1

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["email"])
    sheet.append(["new@x.com"])
    book.save(path)
    changed = stored.scan()
    assert (changed.total, changed.columns) == (1, None)
    assert changed.sha256 != first.sha256
    assert len(opened) == 2


def test_read_options_are_stored_with_the_source_and_read_back_the_same_for_resume() -> None:
    assert ReadOptions().as_stored() == {}
    options = ReadOptions((("E-mail", "email"),), ("Notes",), True, ";", "cp1252", "Leads")
    assert ReadOptions.from_stored(options.as_stored()) == options
    assert ReadOptions.from_stored(None) == ReadOptions()


@pytest.mark.parametrize(
    ("content", "options"),
    [
        (b'email,name\na@x.com,Ann\n\nb@x.com\n,\nc@x.com,Cy,extra\n"d@x.com","D\nE"\n', ReadOptions()),
        (b"email\na@x.com\n\n\nb@x.com\n", ReadOptions()),
        (b"email,skip,name\na@x.com,1,Ann\n\n,,\nb@x.com,2\n", ReadOptions(ignore_columns=("skip",))),
    ],
)
def test_a_csv_scan_counts_exactly_the_records_it_reads(tmp_path: Path, content: bytes, options: ReadOptions) -> None:
    # The scan counts rows without building records: its total must be what storing reads.
    source = FileSource(_write(tmp_path, "c.csv", content), options=options)
    assert source.scan().total == len(list(source.records())) > 0
