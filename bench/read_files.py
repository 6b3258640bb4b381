"""Benchmark: reading an input file record by record (``FileSource(...).records()``).

Writes the sample contacts (3% invalid, 3% duplicates; not timed) as CSV, JSON lines
and a JSON array, then times full passes of ``records()`` over each: best wall and
best CPU seconds of ``--repeat`` runs. This is the queueing pass's reading cost,
without storing.

    .venv/bin/python bench/read_files.py --rows 1000000
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from infrastructure.files.readers import FileSource
from infrastructure.files.sample import write_contacts_csv


def _write_json_files(work: Path, rows: int) -> dict[str, Path]:
    source = work / "contacts.csv"
    write_contacts_csv(source, rows)
    paths = {"csv": source, "jsonl": work / "contacts.jsonl", "json": work / "contacts.json"}
    with source.open(newline="") as text, paths["jsonl"].open("wb") as lines, paths["json"].open("wb") as array:
        array.write(b"[\n")
        for index, record in enumerate(csv.DictReader(text)):
            encoded = orjson.dumps({k: v for k, v in record.items() if v})
            lines.write(encoded + b"\n")
            array.write((b",\n" if index else b"") + encoded)
        array.write(b"\n]\n")
    return paths


def _time_records(path: Path, repeat: int) -> tuple[float, float, int]:
    """Best wall and best CPU seconds of ``repeat`` passes (CPU time is the steadier
    number on a machine shared with other work), and the records read."""
    wall = cpu = float("inf")
    count = 0
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        count = sum(1 for _ in FileSource(path).records())
        wall = min(wall, time.perf_counter() - started)
        cpu = min(cpu, time.process_time() - started_cpu)
    return wall, cpu, count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--formats", nargs="+", default=["jsonl", "json", "csv"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-read-") as folder:
        paths = _write_json_files(Path(folder), args.rows)
        print(f"| format | records | wall s (best of {args.repeat}) | CPU s (best of {args.repeat}) | records/CPU s |")
        print("|---|---|---|---|---|")
        for fmt in args.formats:
            wall, cpu, count = _time_records(paths[fmt], args.repeat)
            print(f"| {fmt} | {count:,} | {wall:.2f} | {cpu:.2f} | {count / cpu:,.0f} |")


if __name__ == "__main__":
    main()
