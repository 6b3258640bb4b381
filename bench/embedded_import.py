"""Benchmark: end-to-end import on the embedded default, peak memory, replay time.

For each row count: generate a contacts CSV (3% invalid, 3% duplicates; not timed),
run `bulkactions import ... --json` in a fresh data dir, sample the RSS of the whole
process tree (the CLI and its projector process) every 50 ms, then time `replay` and
run `verify`. Prints a Markdown table; raw results go to bench/results/.

    .venv/bin/python bench/embedded_import.py --rows 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from infrastructure.files.sample import write_contacts_csv
from tests.e2e.cli import command, import_args


def _run_sampled(
    args: list[str], cwd: Path | None = None
) -> tuple[subprocess.CompletedProcess[str], float, float, float]:
    """Run a command; return it, wall seconds, peak tree RSS (MB) and peak single-process RSS (MB)."""
    started = time.monotonic()
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
    peak_tree = peak_one = 0.0
    done = threading.Event()
    out: dict[str, str] = {}

    def reader() -> None:
        out["stdout"], out["stderr"] = process.communicate()
        done.set()

    threading.Thread(target=reader, daemon=True).start()
    root = psutil.Process(process.pid)
    while not done.wait(0.05):
        try:
            tree = [root, *root.children(recursive=True)]
            sizes = [p.memory_info().rss / 2**20 for p in tree]
        except psutil.Error:
            continue
        peak_tree, peak_one = max(peak_tree, sum(sizes)), max(peak_one, *sizes)
    seconds = time.monotonic() - started
    result = subprocess.CompletedProcess(args, process.returncode, out.get("stdout", ""), out.get("stderr", ""))
    return result, seconds, peak_tree, peak_one


def bench(rows: int, workers: int, keep: bool) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix=f"bench-{rows}-"))
    try:
        source = work / "contacts.csv"
        expected = write_contacts_csv(source, rows)
        data = work / "data"
        run, wall, tree_mb, one_mb = _run_sampled(command(data, *import_args(source, "--workers", str(workers))))
        if run.returncode != 0:
            raise SystemExit(f"import failed: {run.stderr}")
        summary = json.loads(run.stdout.splitlines()[-1])
        exact = (summary["succeeded"], summary["failed"], summary["skipped"]) == (
            expected.valid,
            expected.invalid,
            expected.duplicates,
        )
        replay, replay_s, replay_tree_mb, _ = _run_sampled(command(data, "replay"))
        verify = subprocess.run(command(data, "verify"), capture_output=True, text=True)
        return {
            "rows": rows,
            "workers": workers,
            "import_seconds": summary["seconds"],
            "wall_seconds": round(wall, 2),
            "records_per_second": round(rows / summary["seconds"]),
            "peak_rss_tree_mb": round(tree_mb),
            "peak_rss_process_mb": round(one_mb),
            "replay_seconds": round(replay_s, 2),
            "replay_peak_rss_mb": round(replay_tree_mb),
            "replay_ok": replay.returncode == 0,
            "verify_ok": verify.returncode == 0,
            "counts_exact": exact,
            "counts": [summary["succeeded"], summary["failed"], summary["skipped"]],
        }
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the data dirs")
    args = parser.parse_args()
    results = [bench(rows, args.workers, args.keep) for rows in args.rows]
    machine = {
        "python": platform.python_version(),
        "cpus": psutil.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
    }
    out_dir = Path(__file__).parent / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / f"embedded-{int(time.time())}.json").write_text(
        json.dumps({"machine": machine, "results": results}, indent=2)
    )
    print(f"machine: {machine}")
    columns = ["rows", "import s", "records/s", "peak RSS tree (MB)", "peak RSS one process (MB)", "replay s"]
    print("| " + " | ".join([*columns, "counts exact", "verify"]) + " |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['rows']:,} | {r['import_seconds']} | {r['records_per_second']:,} | {r['peak_rss_tree_mb']} | "
            f"{r['peak_rss_process_mb']} | {r['replay_seconds']} | {r['counts_exact']} | {r['verify_ok']} |"
        )


if __name__ == "__main__":
    main()
