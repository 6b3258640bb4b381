"""Benchmark: the write ceiling of the PostgreSQL event store (issue 13).

    .venv/bin/python bench/pg_write_ceiling.py --writers 1 2 4
    .venv/bin/python bench/pg_write_ceiling.py --writers 1 2 4 --partitions-per-writer   # one log per writer

Each writer is its own process (as each ``bulkactions worker`` is) and stores chunks
of 1001 events, the 1000 outcome events of a processed chunk plus its
``ChunkProcessed``, through the call a worker makes: ``BulkActionLog.record_outcomes``
(``application/chunk_processing.py``) with the production environment
(``infrastructure.bootstrap.event_store_env``: the lean ``FastMapper`` and
``BulkPostgresApplicationRecorder``, which holds the events table's EXCLUSIVE lock
while it COPYs the rows and commits). The events are built before the clock starts:
what is measured is storing them (mapping + insert), not deciding them.

Inside each writer the recorder is timed per chunk: *lock wait* is from the call of
``insert_events`` until ``LOCK TABLE ... IN EXCLUSIVE MODE`` returned; *under lock*
from then until the transaction committed (NOTIFY, COPY, currval, COMMIT); *mapping*
is the rest of ``record_outcomes`` (domain event -> stored event, in Python, no
lock). A sampler reads ``pg_stat_activity`` every 20 ms and counts backends waiting
for a lock. ``lock busy`` is the sum of the time under lock over the wall time, per
log: close to 100 % means the lock is the ceiling; a lower figure with the CPUs busy
means the machine is.

``--partitions N`` puts writer i into log i mod N: N schemas, each with its own
``bulkactions_events`` table, lock and notification sequence (the prototype of
``docs/scaling.md``). ``--premapped`` stores stored events mapped before the clock
starts (``recorder.insert_events`` only), to show the database side alone.

Everything goes to a scratch database (``bulk_scaling_bench``, made if missing) in
fresh schemas dropped after each case; the test database is not touched. Prints a
Markdown table; raw results go to bench/results/.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import queue
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import orjson
import psutil  # type: ignore[import-untyped]
import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from application.event_store import BulkActionLog  # noqa: E402
from domain.bulk_action import Outcome, RecordResult, entity_id_for, record_outcomes  # noqa: E402
from infrastructure.bootstrap import event_store_env  # noqa: E402
from infrastructure.settings import Settings  # noqa: E402

SERVER = "postgresql://postgres@127.0.0.1:5432"
SCRATCH_DB = "bulk_scaling_bench"
CHUNK_RECORDS = 1000  # + ChunkProcessed = 1001 events per chunk, as a worker stores them


def dsn_for(schema: str) -> str:
    return f"{SERVER}/{SCRATCH_DB}?options=-csearch_path%3D{schema}"


def ensure_scratch_db() -> None:
    with psycopg.connect(f"{SERVER}/test", autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (SCRATCH_DB,)).fetchone()
        if not found:
            conn.execute(f"CREATE DATABASE {SCRATCH_DB}")


def event_log(schema: str) -> BulkActionLog:
    """The event store exactly as the composition root builds it for a worker."""
    settings = Settings(event_store="postgres", postgres_dsn=dsn_for(schema), postgres_pool_size=2)
    return BulkActionLog(env=event_store_env(settings))


def chunk_results(action_id: uuid.UUID, chunk_no: int, records: int) -> list[RecordResult]:
    """A contacts insert chunk like the benchmark CSV's: 94 % created, 3 % invalid, 3 %
    duplicates; succeeded outcomes carry their changes (before None, after the value)."""
    results = []
    for index in range(records):
        row = chunk_no * records + index + 1
        line = row + 1
        if index % 100 < 3:
            error = {"field": "email", "code": "invalid_email", "message": "not an email address"}
            results.append(RecordResult(row, line, Outcome.FAILED, errors=[error]))
        elif index % 100 < 6:
            results.append(
                RecordResult(
                    row,
                    line,
                    Outcome.SKIPPED,
                    reason="duplicate_in_input",
                    entity_id=str(entity_id_for(action_id, row - 3)),
                    duplicate_of_row=row - 3,
                )
            )
        else:
            changes: dict[str, list[Any]] = {
                "email": [None, f"person{row}@example{row % 97}.com"],
                "first_name": [None, f"First{row % 1000}"],
                "last_name": [None, f"Last{row % 733}"],
                "phone": [None, f"+1-555-{row % 10_000:04d}"],
                "company": [None, f"Company {row % 211}"],
            }
            results.append(
                RecordResult(
                    row,
                    line,
                    Outcome.SUCCEEDED,
                    entity_id=str(entity_id_for(action_id, row)),
                    op="created",
                    changes=changes,
                    version=1,
                )
            )
    return results


class RecorderTimer:
    """Times the recorder's ``insert_events`` and, inside it, its ``_lock_table``,
    by wrapping them on this one recorder object (the code path stays the library's
    and ours)."""

    def __init__(self, recorder: Any) -> None:
        self.lock_wait: list[float] = []
        self.under_lock: list[float] = []
        self.insert: list[float] = []
        self._called = 0.0
        self._locked = 0.0
        lock_table: Callable[..., None] = recorder._lock_table
        insert_events: Callable[..., Any] = recorder.insert_events

        def timed_lock_table(curs: Any) -> None:
            lock_table(curs)
            self._locked = time.perf_counter()

        def timed_insert_events(stored_events: Sequence[Any], **kwargs: Any) -> Any:
            self._called = time.perf_counter()
            ids = insert_events(stored_events, **kwargs)
            done = time.perf_counter()
            self.lock_wait.append(self._locked - self._called)
            self.under_lock.append(done - self._locked)
            self.insert.append(done - self._called)
            return ids

        recorder._lock_table = timed_lock_table
        recorder.insert_events = timed_insert_events


def writer(
    index: int,
    schema: str,
    chunks: int,
    records: int,
    premapped: bool,
    ready: Any,
    start: EventType,
    finish: EventType,
    results: Any,
) -> None:
    app = event_log(schema)
    try:
        action_id = uuid.uuid4()
        now = datetime.now(UTC)
        batches = [record_outcomes(action_id, n, chunk_results(action_id, n, records), now) for n in range(chunks)]
        stored = [[app.mapper.to_stored_event(e) for e in batch] for batch in batches] if premapped else []
        state_bytes = sum(len(s.state) for s in [app.mapper.to_stored_event(e) for e in batches[0]])
        timer = RecorderTimer(app.recorder)
        per_chunk: list[float] = []
        process = psutil.Process()
        ready.put(index)
        start.wait()
        cpu_before = sum(process.cpu_times()[:2])
        began = time.perf_counter()
        for n in range(chunks):
            t0 = time.perf_counter()
            if premapped:
                app.recorder.insert_events(stored[n])
            elif not app.record_outcomes(batches[n]):
                raise RuntimeError(f"chunk {n} of writer {index} collided: the schema was not fresh")
            per_chunk.append(time.perf_counter() - t0)
        ended = time.perf_counter()
        results.put(
            {
                "writer": index,
                "schema": schema,
                "chunks": chunks,
                "events": chunks * (records + 1),
                "began": began,
                "ended": ended,
                "cpu_seconds": round(sum(process.cpu_times()[:2]) - cpu_before, 3),
                "state_bytes_per_event": round(state_bytes / len(batches[0]), 1),
                "per_chunk": per_chunk,
                "lock_wait": timer.lock_wait,
                "under_lock": timer.under_lock,
                "insert": timer.insert,
            }
        )
        # Keep the connections (and their server backends) until the parent has read
        # the server's CPU time: a backend that exits takes its CPU count with it.
        finish.wait(600)
    finally:
        app.close()


class LockSampler:
    """Counts, every 20 ms, the scratch database's backends waiting for a lock and
    those running a statement (``pg_stat_activity``)."""

    def __init__(self) -> None:
        self.samples: list[tuple[int, int]] = []
        self.stop = threading.Event()
        self.conn = psycopg.connect(f"{SERVER}/{SCRATCH_DB}", autocommit=True)
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        query = (
            "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'),"
            " count(*) FILTER (WHERE state = 'active' AND wait_event_type IS DISTINCT FROM 'Lock')"
            " FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
        )
        while not self.stop.is_set():
            row = self.conn.execute(query, (SCRATCH_DB,)).fetchone()
            if row is not None:
                self.samples.append((int(row[0]), int(row[1])))
            self.stop.wait(0.02)

    def __enter__(self) -> LockSampler:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()
        self.conn.close()


def server_cpu() -> float:
    """CPU seconds used so far by the PostgreSQL server's processes."""
    total = 0.0
    for proc in psutil.process_iter(["name", "cpu_times"]):
        times = proc.info["cpu_times"]
        if times is not None and (proc.info["name"] or "").startswith("postgres"):
            total += times.user + times.system
    return total


def ms(values: list[float]) -> float:
    return round(statistics.mean(values) * 1000, 2) if values else 0.0


def run_case(writers: int, partitions: int, chunks: int, records: int, premapped: bool) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    schemas = [f"ceiling_{tag}_p{k}" for k in range(partitions)]
    with psycopg.connect(f"{SERVER}/{SCRATCH_DB}", autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f"CREATE SCHEMA {schema}")
    for schema in schemas:  # tables made before the clock starts
        event_log(schema).close()
    ctx = mp.get_context("spawn")
    ready, results, start, finish = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Event()
    procs = [
        ctx.Process(
            target=writer, args=(i, schemas[i % partitions], chunks, records, premapped, ready, start, finish, results)
        )
        for i in range(writers)
    ]
    try:
        for proc in procs:
            proc.start()
        waiting_for = len(procs)
        while waiting_for:  # every writer has built its chunks and connected
            try:
                ready.get(timeout=1)
                waiting_for -= 1
            except queue.Empty:
                if any(p.exitcode not in (None, 0) for p in procs):
                    raise RuntimeError("a writer failed before the start (its traceback is above)") from None
        load_before = os.getloadavg()
        cpu_times_before = psutil.cpu_times()
        pg_before = server_cpu()
        with LockSampler() as sampler:
            start.set()
            done = [results.get(timeout=1800) for _ in procs]
        pg_cpu = server_cpu() - pg_before
        busy = psutil.cpu_times()
        finish.set()
        for proc in procs:
            proc.join()
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        with psycopg.connect(f"{SERVER}/{SCRATCH_DB}", autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    wall = max(d["ended"] for d in done) - min(d["began"] for d in done)
    events = sum(d["events"] for d in done)
    stored_chunks = sum(d["chunks"] for d in done)
    under_lock = [t for d in done for t in d["under_lock"]]
    lock_wait = [t for d in done for t in d["lock_wait"]]
    per_chunk = [t for d in done for t in d["per_chunk"]]
    insert = [t for d in done for t in d["insert"]]
    idle = (busy.idle + busy.iowait) - (cpu_times_before.idle + cpu_times_before.iowait)
    total = sum(busy) - sum(cpu_times_before)
    waiting = [s[0] for s in sampler.samples]
    return {
        "writers": writers,
        "partitions": partitions,
        "premapped": premapped,
        "chunks_per_writer": chunks,
        "events_per_chunk": records + 1,
        "events": events,
        "wall_seconds": round(wall, 3),
        "events_per_second": round(events / wall),
        "chunks_per_second": round(stored_chunks / wall, 1),
        "per_chunk_ms": ms(per_chunk),
        "mapping_ms": round(ms(per_chunk) - ms(insert), 2),
        "lock_wait_ms": ms(lock_wait),
        "under_lock_ms": ms(under_lock),
        "under_lock_p95_ms": round(sorted(under_lock)[int(len(under_lock) * 0.95)] * 1000, 2),
        # Share of the wall time some writer held a log's lock, averaged over the logs.
        "lock_busy": round(sum(under_lock) / (wall * partitions), 3),
        "sampled_lock_waiters": round(statistics.mean(waiting), 2) if waiting else None,
        "machine_cpu_busy": round(1 - idle / total, 3) if total else None,
        "writer_cpu_seconds": round(sum(d["cpu_seconds"] for d in done), 2),
        "postgres_cpu_seconds": round(pg_cpu, 2),
        "state_bytes_per_event": done[0]["state_bytes_per_event"],
        "load_average_before": [round(x, 2) for x in load_before],
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| writers | logs | events per chunk | events/s | chunks/s | ms per chunk | mapping ms | lock wait ms "
        "| under lock ms (p95) | lock busy | waiters (sampled) | CPU busy | CPU s writers / PostgreSQL | load before |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['writers']} | {r['partitions']} | {r['events_per_chunk']} | {r['events_per_second']:,} | "
            f"{r['chunks_per_second']} | {r['per_chunk_ms']} | {r['mapping_ms']} | {r['lock_wait_ms']} | "
            f"{r['under_lock_ms']} ({r['under_lock_p95_ms']}) | {r['lock_busy']:.0%} | {r['sampled_lock_waiters']} | "
            f"{r['machine_cpu_busy']:.0%} | {r['writer_cpu_seconds']} / {r['postgres_cpu_seconds']} | "
            f"{r['load_average_before'][0]} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--chunks", type=int, default=60, help="chunks of 1001 events per writer")
    parser.add_argument("--records", type=int, default=CHUNK_RECORDS, help="outcome events per chunk (+1)")
    parser.add_argument("--partitions", type=int, default=1, help="logs (schemas); writer i writes to i mod N")
    parser.add_argument("--partitions-per-writer", action="store_true", help="as many logs as writers")
    parser.add_argument("--premapped", action="store_true", help="map events before the clock starts")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    ensure_scratch_db()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"uptime before: {uptime}; cpus: {os.cpu_count()}", flush=True)
    rows = []
    for writers in args.writers:
        partitions = writers if args.partitions_per_writer else args.partitions
        row = run_case(writers, partitions, args.chunks, args.records, args.premapped)
        print(orjson.dumps(row).decode(), flush=True)
        rows.append(row)
    after = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"uptime after: {after}")
    print(markdown(rows))
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out = args.out or REPO / "bench" / "results" / f"pg_write_ceiling-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine, "uptime_before": uptime, "uptime_after": after, "results": rows}
    out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print(f"raw results: {out}")


if __name__ == "__main__":
    main()
