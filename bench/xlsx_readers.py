"""Benchmark: reading a large .xlsx row by row, openpyxl 3.1.5 (read-only mode) against
python-calamine 0.9.1, each in its own process (time and peak RSS of that process).

Writes the sample contacts (3% invalid, 3% duplicates) once as an .xlsx with openpyxl's
write-only mode (not timed against the readers; its time is printed), then reads every
row of the first sheet with each reader, turning each cell into the text the import
stores. Prints a Markdown table (CPU seconds beside wall seconds: on a shared machine
the wall time says more about the neighbours than about the reader).

    .venv/bin/pip install python-calamine==0.9.1  # the reader compared with; not a dependency

    .venv/bin/python bench/xlsx_readers.py --rows 1000000
    .venv/bin/python bench/xlsx_readers.py --rows 1000000 --file /tmp/contacts-1m.xlsx  # reuse a file
"""

from __future__ import annotations

import argparse
import csv
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from infrastructure.files.sample import write_contacts_csv

READERS = ("openpyxl", "calamine")


def write_xlsx(path: Path, rows: int) -> float:
    from openpyxl import Workbook

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "contacts.csv"
        write_contacts_csv(source, rows)
        book = Workbook(write_only=True)
        sheet = book.create_sheet("contacts")
        with source.open(newline="") as text:
            for values in csv.reader(text):
                sheet.append(values)
        book.save(path)
    return time.perf_counter() - started


def read_openpyxl(path: Path) -> int:
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True, data_only=True)
    count = 0
    for values in book.worksheets[0].iter_rows(values_only=True):
        cells = ["" if v is None else str(v) for v in values]
        count += bool(cells)
    book.close()
    return count


def read_calamine(path: Path) -> int:
    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_path(str(path))
    count = 0
    for values in book.get_sheet_by_index(0).iter_rows():
        cells = ["" if v is None else str(v) for v in values]
        count += bool(cells)
    book.close()
    return count


def _child(reader: str, path: Path) -> None:
    started = time.perf_counter()
    rows = read_openpyxl(path) if reader == "openpyxl" else read_calamine(path)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"{rows} {seconds:.2f} {usage.ru_maxrss / 1024:.0f} {usage.ru_utime + usage.ru_stime:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--file", type=Path, default=None, help="the .xlsx to read (written first if missing)")
    parser.add_argument("--readers", nargs="+", default=list(READERS), choices=READERS)
    parser.add_argument("--child", choices=READERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    path = args.file or Path(tempfile.gettempdir()) / f"bench-contacts-{args.rows}.xlsx"
    if args.child:
        _child(args.child, path)
        return
    if not path.exists():
        seconds = write_xlsx(path, args.rows)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) with openpyxl write-only in {seconds:.1f}s")
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print("| reader | rows read | wall s | CPU s | rows per CPU s | peak RSS (MB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for reader in args.readers:
        out = subprocess.run(
            [sys.executable, __file__, "--child", reader, "--file", str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        rows, seconds, peak, cpu = int(out[0]), float(out[1]), out[2], float(out[3])
        print(f"| {reader} | {rows:,} | {seconds:.1f} | {cpu:.1f} | {rows / cpu:,.0f} | {peak} |")


if __name__ == "__main__":
    main()
