"""Benchmark: `bulkactions import` of the same contacts as CSV and as xlsx, end to end.

Writes the sample contacts (3% invalid, 3% duplicates) once as a CSV and, from it, as
an .xlsx with openpyxl's write-only mode (not timed; reused from `--dir` when there),
then imports each into a fresh data dir (`import FILE --entity contact --action insert
--json`, embedded default) with the CLI of each `--code` checkout, in turn, `--repeat`
times: wall seconds, CPU seconds of the whole process tree (user + system of the CLI and
the processes it spawns and waits for) and its peak RSS (sampled every 50 ms), the
counts against the generator's, the load average before and after. An A/B of two
checkouts interleaves them, the CSV import as the control.

    .venv/bin/python bench/xlsx_import.py --rows 100000 --code . /tmp/other-checkout --repeat 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.verify import _run_sampled
from bench.xlsx_readers import write_xlsx
from infrastructure.files.sample import SampleCounts, write_contacts_csv
from tests.e2e.cli import command, import_args


def _inputs(folder: Path, rows: int) -> tuple[SampleCounts, dict[str, Path]]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {fmt: folder / f"contacts-{rows}.{fmt}" for fmt in ("csv", "xlsx")}
    expected = write_contacts_csv(paths["csv"], rows)  # cheap, and gives the counts
    if not paths["xlsx"].exists():
        write_xlsx(paths["xlsx"], rows)
    return expected, paths


def _import(code: Path, path: Path, expected: SampleCounts) -> str:
    """One import in a fresh data dir: its row of the table."""
    data = Path(tempfile.mkdtemp(prefix="bench-xlsx-import-"))
    try:
        load_before = os.getloadavg()[0]
        run, seconds, cpu, peak = _run_sampled(command(data / "data", *import_args(path)), cwd=code)
        load_after = os.getloadavg()[0]
    finally:
        shutil.rmtree(data, ignore_errors=True)
    if run.returncode != 0:
        raise SystemExit(f"import of {path} failed: {run.stderr}")
    summary = json.loads(run.stdout.splitlines()[-1])
    counts = [summary[k] for k in ("total", "succeeded", "failed", "skipped")]
    exact = counts == [expected.total, expected.valid, expected.invalid, expected.duplicates]
    return (
        f"| {code} | {path.name} | {seconds:.1f} | {cpu:.1f} | {peak:.0f} | {' / '.join(f'{c:,}' for c in counts)}"
        f" | {exact} | {load_before:.1f} -> {load_after:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "bench-xlsx-import")
    parser.add_argument("--code", type=Path, nargs="+", default=[Path(".")], help="checkouts whose CLI imports")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    expected, paths = _inputs(args.dir, args.rows)
    print("| code | input | wall s | CPU s of the tree | peak tree RSS MB | total / succeeded / failed / skipped"
          " | exact | load before -> after |")  # fmt: skip
    print("|---|---|---:|---:|---:|---|---|---|")
    for _ in range(args.repeat):
        for code in args.code:
            for fmt in ("xlsx", "csv"):
                print(_import(code.resolve(), paths[fmt], expected), flush=True)


if __name__ == "__main__":
    main()
