"""Benchmark: a large contacts import on the production stack (PostgreSQL event store,
RabbitMQ transport), with 1, 2 and 4 worker processes.

    .venv/bin/python bench/production_import.py --rows 1000000 --workers 1 2 4

Every run gets a fresh PostgreSQL schema and RabbitMQ vhost, starts real
``bulkactions relay``, ``projector`` and N ``worker`` processes, and runs
``bulkactions import FILE --json`` to completion. Entities and read models are
SQLite files in the run's data directory (BULK_DOCUMENT_STORE=sqlite; MongoDB is
not installed here). A sampler records, once a second:
- queued: records whose chunk is stored in the event store (ChunkQueued events);
- published: records whose chunk message the relay has had confirmed by RabbitMQ;
- processed: outcome events stored by workers;
- projected: records counted in the read model by the projector;
- queue depth: chunk messages ready in RabbitMQ (not yet delivered to a worker);
- events-lock waiters: writers waiting for the events table's EXCLUSIVE lock.
Results go to a JSON file; ``--markdown`` prints the table used in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from infrastructure.files.sample import write_contacts_csv  # noqa: E402
from infrastructure.rabbitmq.transport import RabbitMQTransport  # noqa: E402
from tests.e2e.cli import import_args  # noqa: E402
from tests.integration.production_stack import BULKACTIONS, ProductionStack  # noqa: E402

CHUNK_QUEUED = "domain.bulk_action:BulkChunk.ChunkQueued"
OUTCOME = "domain.bulk_action:BulkChunk.Record%"


class Sampler:
    """Samples every stage's progress once a second in a thread."""

    def __init__(self, stack: ProductionStack, chunk_size: int) -> None:
        self.stack = stack
        self.chunk_size = chunk_size
        self.samples: list[dict[str, Any]] = []
        self.stop = threading.Event()
        self.transport = RabbitMQTransport(stack.amqp_url)
        self.started = time.monotonic()

    def sample(self) -> dict[str, Any]:
        stack = self.stack
        try:
            queued, processed = stack.query(
                "SELECT count(*) FILTER (WHERE topic = %s), count(*) FILTER (WHERE topic LIKE %s)"
                " FROM bulkactions_events",
                CHUNK_QUEUED,
                OUTCOME,
            )[0]
            relay_position = stack.query("SELECT coalesce(max(position), 0) FROM bulk_positions")[0][0]
            published = stack.query(
                "SELECT count(*) FROM bulkactions_events WHERE topic = %s AND notification_id <= %s",
                CHUNK_QUEUED,
                relay_position,
            )[0][0]
            waiting = stack.query(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'bulkactions_events'::regclass"
            )[0][0]
        except Exception:  # tables not created yet
            queued = processed = published = waiting = 0
        return {
            "t": round(time.monotonic() - self.started, 2),
            "queued_records": int(queued) * self.chunk_size,
            "published_records": int(published) * self.chunk_size,
            "processed_records": int(processed),
            "projected_records": self._projected(),
            "queue_depth": self.transport.depth("bulk.chunks"),
            # Writers queued for the events table's EXCLUSIVE lock at this instant.
            "events_lock_waiters": int(waiting),
        }

    def _projected(self) -> int:
        path = self.stack.data_dir / "readmodels.db"
        if not path.exists():
            return 0
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
                row = conn.execute("SELECT coalesce(sum(succeeded + failed + skipped), 0) FROM actions").fetchone()
            return int(row[0])
        except sqlite3.Error:
            return 0

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append(self.sample())
            self.stop.wait(1.0)

    def close(self) -> None:
        self.stop.set()
        self.samples.append(self.sample())
        self.transport.close()


def _server_cpu() -> dict[str, float]:
    """CPU seconds used so far by the PostgreSQL and RabbitMQ server processes."""
    totals = {"postgresql": 0.0, "rabbitmq": 0.0}
    for proc in psutil.process_iter(["name", "cpu_times"]):
        name, times = proc.info["name"] or "", proc.info["cpu_times"]
        if times is None:
            continue
        key = "postgresql" if name.startswith("postgres") else "rabbitmq" if name.startswith("beam") else None
        if key:
            totals[key] += times.user + times.system
    return totals


def _process_cpu(process: subprocess.Popen[bytes]) -> float:
    times = psutil.Process(process.pid).cpu_times()
    return float(times.user + times.system)


def _reached(samples: list[dict[str, Any]], key: str, total: int) -> float | None:
    """Seconds (since the import started) when a stage had all ``total`` records."""
    for sample in samples:
        if sample[key] >= total:
            return float(sample["t"])
    return None


def run_once(csv: Path, rows: int, workers: int, work_dir: Path) -> dict[str, Any]:
    with ProductionStack(work_dir, delivery_limit=5, prefetch=2) as stack:
        stack.start("relay", "relay")
        stack.start("projector", "projector")
        for n in range(workers):
            stack.start(f"worker-{n}", "worker")
        # Let the processes create tables and connect, so the clock measures the import.
        time.sleep(3)
        sampler = Sampler(stack, 1000)
        thread = threading.Thread(target=sampler.run, daemon=True)
        cpu_before = {name: _process_cpu(p) for name, p in stack.processes.items()} | _server_cpu()
        load_before = os.getloadavg()[0]
        started = time.monotonic()
        sampler.started = started
        thread.start()
        importing = psutil.Popen(
            [*BULKACTIONS, *import_args(csv)],
            cwd=REPO,
            env=stack.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        import_cpu = 0.0
        while importing.poll() is None:
            import_cpu = float(sum(importing.cpu_times()[:2]))
            time.sleep(0.5)
        out, err = importing.communicate()
        wall = time.monotonic() - started
        cpu_after = {name: _process_cpu(p) for name, p in stack.processes.items()} | _server_cpu()
        sampler.close()
        thread.join()
        if importing.returncode != 0:
            raise RuntimeError(f"import failed: {err.decode()[-2000:]}")
        summary = orjson.loads(out.decode().splitlines()[-1])
        cpu = {name: round(cpu_after[name] - cpu_before[name], 1) for name in cpu_after}
        cpu["import (CLI)"] = round(import_cpu, 1)
        verify = stack.run("verify", timeout=1800)
        samples = sampler.samples
        stages = {key: _reached(samples, f"{key}_records", rows) for key in ("queued", "published", "processed")}
        stages["projected"] = _reached(samples, "projected_records", rows)
        return {
            "rows": rows,
            "workers": workers,
            "wall_seconds": round(wall, 2),
            "end_to_end_records_per_second": round(rows / wall, 1),
            "summary": summary,
            "verify": verify.stdout.strip() or verify.stderr.strip(),
            "stage_done_at_seconds": stages,
            "stage_records_per_second": {k: (round(rows / v, 1) if v else None) for k, v in stages.items()},
            "max_queue_depth": max(s["queue_depth"] for s in samples),
            "mean_events_lock_waiters": round(sum(s["events_lock_waiters"] for s in samples) / len(samples), 2),
            "cpu_seconds": cpu,
            "load_average_before": round(load_before, 2),
            "samples": samples,
        }


def markdown(results: list[dict[str, Any]]) -> str:
    lines = [
        "| workers | end to end (s) | records/s end to end | queued by | published by | processed by | "
        "projected by | max queue depth (chunks) | result |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s, rate = r["stage_done_at_seconds"], r["stage_records_per_second"]

        def cell(key: str, s: dict[str, Any] = s, rate: dict[str, Any] = rate) -> str:
            return f"{s[key]} s ({rate[key]:,.0f}/s)" if s[key] else "n/a"

        summary = r["summary"]
        lines.append(
            f"| {r['workers']} | {r['wall_seconds']} | {r['end_to_end_records_per_second']:,.0f} | {cell('queued')} | "
            f"{cell('published')} | {cell('processed')} | {cell('projected')} | {r['max_queue_depth']} | "
            f"{summary['status']} {summary['succeeded']}/{summary['failed']}/{summary['skipped']} |"
        )
    return "\n".join(lines)


def depth_series(result: dict[str, Any], every: int = 5) -> str:
    points = result["samples"][::every]
    return ", ".join(f"{p['t']:.0f}s:{p['queue_depth']}" for p in points)


def report(paths: list[Path]) -> str:
    """The tables of docs/benchmarks.md from saved result files (label = file stem suffix)."""
    rows, depths, cpus = [], [], []
    for path in paths:
        label = path.stem.rsplit("-", 1)[-1]
        for r in orjson.loads(path.read_bytes())["results"]:
            s, rate = r["stage_done_at_seconds"], r["stage_records_per_second"]
            keys = ("queued", "published", "processed", "projected")
            stages = " | ".join(f"{s[k]} s ({rate[k]:,.0f}/s)" for k in keys)
            rows.append(
                f"| {label}-{r['workers']} | {r['workers']} | {r['wall_seconds']} s | "
                f"{r['end_to_end_records_per_second']:,.0f} | {stages} | {r['max_queue_depth']} | "
                f"{r.get('load_average_before', 'n/a')} |"
            )
            depths.append(f"- {label}-{r['workers']}: {depth_series(r)}")
            cpus.append(f"- {label}-{r['workers']}: " + ", ".join(f"{k} {v}" for k, v in r["cpu_seconds"].items()))
    return "\n".join(rows) + "\n\n" + "\n".join(depths) + "\n\n" + "\n".join(cpus)


def main() -> None:
    if sys.argv[1:2] == ["--report"]:
        print(report([Path(p) for p in sys.argv[2:]]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "production.json")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bulk-bench-") as tmp:
        csv = Path(tmp) / f"contacts-{args.rows}.csv"
        counts = write_contacts_csv(csv, args.rows)
        results = []
        for workers in args.workers:
            run_dir = Path(tmp) / f"run-{workers}"
            run_dir.mkdir()
            result = run_once(csv, args.rows, workers, run_dir)
            result["expected"] = {"succeeded": counts.valid, "failed": counts.invalid, "skipped": counts.duplicates}
            results.append(result)
            print(orjson.dumps({k: v for k, v in result.items() if k != "samples"}).decode(), flush=True)
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}
    args.out.write_bytes(orjson.dumps({"machine": machine, "results": results}, option=orjson.OPT_INDENT_2))
    if args.markdown:
        print(markdown(results))
        for r in results:
            print(f"queue depth, {r['workers']} worker(s): {depth_series(r)}")
            print(f"CPU seconds, {r['workers']} worker(s): {r['cpu_seconds']}")


if __name__ == "__main__":
    main()
