"""Benchmark: `bulkactions import` against `sqlite-utils insert` on the same file, in the
same run, plus what the performance issue asks beside it.

For each row count: generate a contacts CSV (3% invalid, 3% duplicates; not timed),
then, on a fresh data dir each:

1. `sqlite-utils insert DB contacts FILE --csv --pk email --ignore` (no validation,
   no per-row results): the plain loader;
2. `bulkactions import FILE --entity contact --action insert --json`: validated, one
   stored event per record, read models current (the summary's counts are checked
   against the generator's);
3. `bulkactions import` of an UPDATE of every contact changing one field, then an
   UPSERT of the original file (every contact changed back: each change recorded);
4. `bulkactions replay` (three actions: 3x the rows), then `verify`, then
   `verify --entities` (every entity folded from the events and compared);

sampling the RSS of each whole process tree every 50 ms, and measuring the data dir
(bytes per record per store). Prints a Markdown table; raw results go to bench/results/.

    .venv/bin/pip install sqlite-utils==4.2.1
    .venv/bin/python bench/vs_sqlite_utils.py --rows 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.embedded_import import _run_sampled
from infrastructure.files.sample import SampleCounts, write_contacts_csv
from tests.e2e.cli import command, import_args

STORES = {
    "events": ["events.db"],
    "entities": ["entities.db"],
    "read models": ["readmodels.db"],
}


def _sizes(data: Path) -> dict[str, int]:
    sizes = {
        name: sum((data / f).stat().st_size for f in files if (data / f).exists()) for name, files in STORES.items()
    }
    sizes["all"] = sum(p.stat().st_size for p in data.rglob("*") if p.is_file())
    return sizes


def _update_file(source: Path, target: Path) -> None:
    """Every row of ``source`` with its first name changed: an UPDATE of every contact."""
    with source.open() as rows, target.open("w") as out:
        header = next(rows)
        out.write(header)
        names = header.rstrip("\n").split(",")
        first = names.index("first_name")
        for line in rows:
            cells = line.rstrip("\n").split(",")
            cells[first] = "Renamed"
            out.write(",".join(cells) + "\n")


def _import(data: Path, path: Path, action: str, code: Path | None = None) -> tuple[dict[str, Any], float, float]:
    # ``python -m`` puts the working directory first on the path: run in ``code`` to
    # import another checkout's code.
    run, wall, tree_mb, _ = _run_sampled(command(data, *import_args(path, action=action)), cwd=code)
    if run.returncode != 0:
        raise SystemExit(f"import ({action}) failed: {run.stderr[-2000:]}")
    summary: dict[str, Any] = json.loads(run.stdout.splitlines()[-1])
    return summary, wall, tree_mb


def _plain_load(db: Path, source: Path) -> tuple[float, float]:
    """`sqlite-utils insert` of the file into a new database: seconds, peak MB."""
    db.unlink(missing_ok=True)
    loader = shutil.which("sqlite-utils") or str(Path(sys.executable).parent / "sqlite-utils")
    plain, plain_s, plain_mb, _ = _run_sampled(
        [loader, "insert", str(db), "contacts", str(source), "--csv", "--pk", "email", "--ignore"]
    )
    if plain.returncode != 0:
        raise SystemExit(f"sqlite-utils failed: {plain.stderr}")
    return plain_s, plain_mb


def _exact(summary: dict[str, Any], expected: SampleCounts) -> bool:
    return (summary["succeeded"], summary["failed"], summary["skipped"]) == (
        expected.valid,
        expected.invalid,
        expected.duplicates,
    )


def rounds(rows: int, count: int, against: Path | None) -> list[dict[str, Any]]:
    """``count`` rounds on one file, each: `sqlite-utils insert`, then `bulkactions import`
    on a new data dir with this checkout's code and, given ``against``, with that
    checkout's (the two in turns first). On a shared machine the times of one run move by
    10-20%; pairs run back to back compare code, and the ratio, under the same load."""
    work = Path(tempfile.mkdtemp(prefix=f"vs-sqlite-utils-rounds-{rows}-"))
    try:
        source = work / "contacts.csv"
        expected = write_contacts_csv(source, rows)
        codes: list[tuple[str, Path | None]] = [("this", None)] + ([("against", against)] if against else [])
        done = []
        for n in range(count):
            plain_s, _ = _plain_load(work / "plain.db", source)
            found: dict[str, Any] = {"round": n + 1, "sqlite_utils_seconds": round(plain_s, 2)}
            for name, code in codes if n % 2 == 0 else codes[::-1]:
                data = work / f"data-{name}"
                summary, seconds, peak_mb = _import(data, source, "insert", code)
                shutil.rmtree(data)
                found |= {
                    f"{name}_seconds": round(seconds, 2),
                    f"{name}_ratio": round(plain_s / seconds, 2),
                    f"{name}_exact": _exact(summary, expected),
                    f"{name}_peak_mb": round(peak_mb),
                }
            print(found, flush=True)
            done.append(found)
        return done
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench(rows: int, keep: bool, verify_too: bool = True) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"vs-sqlite-utils-{rows}-"))
    try:
        source, updates = work / "contacts.csv", work / "updates.csv"
        expected = write_contacts_csv(source, rows)
        _update_file(source, updates)
        plain_s, plain_mb = _plain_load(work / "plain.db", source)
        data = work / "data"
        inserted, insert_s, insert_mb = _import(data, source, "insert")
        sizes = _sizes(data)
        exact = _exact(inserted, expected)
        updated, update_s, update_mb = _import(data, updates, "update")
        upserted, upsert_s, upsert_mb = _import(data, source, "upsert")
        replay, replay_s, replay_mb, _ = _run_sampled(command(data, "replay"))
        verify_ok = entities_ok = None
        verify_s = entities_s = entities_mb = 0.0
        if verify_too:
            started = time.perf_counter()
            verify = subprocess.run(command(data, "verify"), capture_output=True, text=True, check=False)
            verify_s, verify_ok = time.perf_counter() - started, verify.returncode == 0
            entities, entities_s, entities_mb, _ = _run_sampled(command(data, "verify", "--entities"))
            entities_ok = entities.returncode == 0
        csv_bytes = source.stat().st_size
        return {
            "rows": rows,
            "csv_bytes": csv_bytes,
            "sqlite_utils_seconds": round(plain_s, 2),
            "sqlite_utils_peak_mb": round(plain_mb),
            "insert_seconds": round(insert_s, 2),
            "ratio": round(plain_s / insert_s, 2),
            "insert_peak_mb": round(insert_mb),
            "counts_exact": exact,
            "update_seconds": round(update_s, 2),
            "update_succeeded": updated["succeeded"],
            "update_peak_mb": round(update_mb),
            "upsert_seconds": round(upsert_s, 2),
            "upsert_succeeded": upserted["succeeded"],
            "upsert_peak_mb": round(upsert_mb),
            "replay_seconds": round(replay_s, 2),
            "replay_ok": replay.returncode == 0,
            "replay_peak_mb": round(replay_mb),
            "verify_ok": verify_ok,
            "verify_seconds": round(verify_s, 2),
            "verify_entities_ok": entities_ok,
            "verify_entities_seconds": round(entities_s, 2),
            "verify_entities_peak_mb": round(entities_mb),
            "bytes_after_insert": sizes,
            "times_csv": round(sizes["all"] / csv_bytes, 1),
            "bytes_per_record": {name: round(size / rows) for name, size in sizes.items()},
        }
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--keep", action="store_true", help="keep the work dirs")
    parser.add_argument(
        "--no-verify", action="store_true", help="skip verify and verify --entities (11 minutes at 1M rows)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="instead of the bench: this many rounds of sqlite-utils and the import alone, back to back",
    )
    parser.add_argument("--against", type=Path, help="with --rounds: a checkout of other code to import with too")
    args = parser.parse_args()
    machine = {
        "python": platform.python_version(),
        "cpus": psutil.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "load_average": [round(x, 2) for x in psutil.getloadavg()],
    }
    out_dir = Path(__file__).parent / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = int(time.time())
    if args.rounds:
        against = None if args.against is None else str(args.against.resolve())
        found = {rows: rounds(rows, args.rounds, args.against) for rows in args.rows}
        (out_dir / f"vs-sqlite-utils-rounds-{stamp}.json").write_text(
            json.dumps({"machine": machine, "against": against, "rounds": found}, indent=2)
        )
        for rows, each in found.items():
            for name in ("this", "against")[: 2 if against else 1]:
                ratios = [r[f"{name}_ratio"] for r in each]
                print(f"{rows:,} rows, {name}: ratios {ratios}, median {statistics.median(ratios):.2f}")
        return
    results = [bench(rows, args.keep, verify_too=not args.no_verify) for rows in args.rows]
    (out_dir / f"vs-sqlite-utils-{stamp}.json").write_text(
        json.dumps({"machine": machine, "results": results}, indent=2)
    )
    print(f"machine: {machine}")
    print(
        "| rows | sqlite-utils s | import s | ratio | update s | upsert s | replay s (3 actions) | peak MB | "
        "data dir x CSV | exact | verify s | verify --entities s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['rows']:,} | {r['sqlite_utils_seconds']} | {r['insert_seconds']} | {r['ratio']} | "
            f"{r['update_seconds']} | {r['upsert_seconds']} | {r['replay_seconds']} | {r['insert_peak_mb']} | "
            f"{r['times_csv']} | {r['counts_exact']} | {r['verify_seconds']} ({r['verify_ok']}) | "
            f"{r['verify_entities_seconds']} ({r['verify_entities_ok']}, {r['verify_entities_peak_mb']} MB) |"
        )
        print(f"bytes per record after the insert: {r['bytes_per_record']}")


if __name__ == "__main__":
    main()
