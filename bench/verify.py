"""Benchmark: `bulkactions verify` on one large action: wall time and peak memory.

Makes the action with `bulkactions demo --rows N` (not timed) unless given a data dir
that holds one, then runs `verify` on the clean read models, again with one failed log
line of the read model edited to succeeded, and with every failed line edited so (put
back afterwards; `--json` also times `verify --json` on those). Peak RSS is the
verify process's (sampled every 50 ms, with any children). `--code DIR` runs another
checkout's CLI (an older commit, for a before/after) on the same data dir.

    .venv/bin/python bench/verify.py --rows 1000000
    .venv/bin/python bench/verify.py --data-dir /tmp/data --code /tmp/old-checkout
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]


def _run_sampled(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess[str], float, float, float]:
    """Run a command; return it, its wall seconds, its CPU seconds (user + system: less
    disturbed than wall time by others' load on a shared machine) and the peak RSS (MB)
    of its process tree."""
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    process = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out: dict[str, str] = {}
    done = threading.Event()

    def reader() -> None:
        out["stdout"], out["stderr"] = process.communicate()
        done.set()

    threading.Thread(target=reader, daemon=True).start()
    root, peak = psutil.Process(process.pid), 0.0
    while not done.wait(0.05):
        try:
            peak = max(peak, sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20)
        except psutil.Error:
            continue
    seconds = time.monotonic() - started
    process.wait()
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = cpu_after.ru_utime + cpu_after.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime
    return subprocess.CompletedProcess(args, process.returncode, out["stdout"], out["stderr"]), seconds, cpu, peak


def _cli(data: Path, *args: str) -> list[str]:
    """The CLI of the checkout that is the working directory (`-m` imports from there)."""
    return [sys.executable, "-m", "api.cli", "--data-dir", str(data), *args]


@contextmanager
def _tampered(data: Path, lines: str) -> Iterator[str]:
    """Failed log lines of the read model marked succeeded ("one" or "all" of them),
    put back afterwards (failed lines are the ones with errors)."""
    where = "outcome='failed'" + (
        " AND row = (SELECT MIN(row) FROM record_logs WHERE outcome='failed')" if lines == "one" else ""
    )
    with sqlite3.connect(data / "readmodels.db") as conn:
        changed = conn.execute(f"UPDATE record_logs SET outcome='succeeded' WHERE {where}").rowcount
    try:
        yield f"{changed} failed line(s) -> succeeded"
    finally:
        with sqlite3.connect(data / "readmodels.db") as conn:
            conn.execute("UPDATE record_logs SET outcome='failed' WHERE outcome='succeeded' AND errors IS NOT NULL")


def _measure(code: Path, data: Path, label: str, *options: str) -> dict[str, object]:
    run, seconds, cpu, peak = _run_sampled(_cli(data, "verify", *options), cwd=code)
    report = (run.stdout + run.stderr).strip().splitlines()
    return {
        "case": " ".join([label, *options]),
        "exit": run.returncode,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "peak_rss_mb": round(peak),
        "output_lines": len(report),
        "report": report[:3] + (["..."] if len(report) > 4 else []) + report[-1:],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--data-dir", type=Path, default=None, help="holds one imported action already")
    parser.add_argument("--code", type=Path, default=REPO, help="the checkout whose CLI runs verify")
    parser.add_argument("--json", action="store_true", help="also time `verify --json` on the tampered read models")
    args = parser.parse_args()
    data = args.data_dir or Path(tempfile.mkdtemp(prefix="bench-verify-")) / "data"
    if args.data_dir is None:
        subprocess.run(_cli(data, "demo", "--rows", str(args.rows), "--json"), cwd=REPO, check=True)
    code = args.code.resolve()
    variants: list[tuple[str, ...]] = [(), ("--json",)] if args.json else [()]
    results = [_measure(code, data, "clean")]
    for lines in ("one", "all"):
        with _tampered(data, lines) as label:
            results += [_measure(code, data, label, *options) for options in variants]
    load = os.getloadavg()[0]
    print(json.dumps({"code": str(code), "data": str(data), "load_avg_1m": load, "results": results}, indent=2))


if __name__ == "__main__":
    main()
