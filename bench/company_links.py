"""Benchmark: what linking contacts to companies costs on a 100k-row contact import.

One contacts CSV (infrastructure/files/sample.py: 3% invalid, 3% duplicates, 997
company domains repeated over the rows), imported into a fresh data dir by each
build: ``--before`` (a checkout without linking, e.g. /work/main/.venv/bin/bulkactions),
this one without ``--link-companies`` (each contact looked up, every domain
``not_found``), and this one with it (997 companies created). Wall and CPU (the CLI and
every process it waited for) and the load average before each run.

    .venv/bin/python bench/company_links.py --rows 100000 --before /path/to/old/bulkactions
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from infrastructure.files.sample import write_contacts_csv


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _size_mb(data: Path) -> float:
    return sum(f.stat().st_size for f in data.rglob("*") if f.is_file()) / 1e6


def _run(program: list[str], csv: Path, folder: Path, *options: str) -> tuple[float, float, float, str]:
    data = folder / "data"
    shutil.rmtree(data, ignore_errors=True)
    load = os.getloadavg()[0]
    cpu, started = _cpu(), time.monotonic()
    args = [*program, "--data-dir", str(data), "import", str(csv), "--entity", "contact", "--action", "insert"]
    done = subprocess.run([*args, "--json", *options], capture_output=True, text=True, check=True)
    wall = time.monotonic() - started
    last = json.loads(done.stdout.strip().splitlines()[-1])
    counts = f"{last['succeeded']}/{last['failed']}/{last['skipped']} | {_size_mb(data):.0f}"
    return wall, _cpu() - cpu, load, counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--before", default=None, help="bulkactions of a build without linking")
    args = parser.parse_args()
    this = [sys.executable, "-m", "api.cli"]
    with tempfile.TemporaryDirectory(prefix="bench-links-") as tmp:
        folder = Path(tmp)
        csv = folder / "contacts.csv"
        write_contacts_csv(csv, args.rows)
        runs = [
            ("this build, linking to stored companies", this, ()),
            ("--link-companies", this, ("--link-companies",)),
        ]
        if args.before:
            runs.insert(0, ("before linking", [args.before], ()))
        print("| run | rows | wall s | CPU s | load avg (1 min) before | succeeded/failed/skipped | data dir MB |")
        print("|---|---|---|---|---|---|---|")
        for _ in range(args.repeat):
            for name, program, options in runs:
                wall, cpu, load, counts = _run(program, csv, folder, *options)
                print(f"| {name} | {args.rows:,} | {wall:.1f} | {cpu:.1f} | {load:.2f} | {counts} |", flush=True)


if __name__ == "__main__":
    main()
