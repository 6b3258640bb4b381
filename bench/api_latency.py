"""GET /v1/bulk-actions/{id} latency while a large import runs, on the embedded default.

Starts a real ``bulkactions serve`` (uvicorn, relay, workers and projector) on a fresh
data dir, uploads an N-row contacts CSV through the API, and while the import runs
sends GET /v1/bulk-actions/{id} at a fixed rate (open loop: each request is timed
from the moment it was due, so a slow server cannot hide its queueing) for a bounded
time. Prints one JSON object and, with --markdown, a table row for docs/benchmarks.md.

    .venv/bin/python bench/api_latency.py --rows 1000000 --rate 200 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from infrastructure.files.sample import write_contacts_csv  # noqa: E402
from tests.e2e.http_server import ApiServer, create_account  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class RawClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams.

    The bench shares the machine with the server; httpx costs about a millisecond of
    CPU per request, which on a small box delays the client's own sends and is then
    counted as server latency. This client spends a few microseconds per request.
    """

    def __init__(self, base_url: str, key: str) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.key = key
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.idle:
            reader, writer = self.idle.pop()
            try:
                return await self._exchange(reader, writer, path)
            except (OSError, asyncio.IncompleteReadError):
                writer.close()  # the server closed an idle keep-alive connection: reconnect once
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return await self._exchange(reader, writer, path)

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str
    ) -> tuple[int, bytes]:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {self.key}\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await reader.readexactly(length)
        self.idle.append((reader, writer))
        return status, body

    async def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


class HttpxClient:
    def __init__(self, base_url: str, key: str) -> None:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        self.client = httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {key}"}, limits=limits, timeout=30
        )

    async def get(self, path: str) -> tuple[int, bytes]:
        response = await self.client.get(path)
        return response.status_code, response.content

    async def close(self) -> None:
        await self.client.aclose()


async def poll(
    base_url: str, key: str, action_id: str, rate: float, seconds: float, client_kind: str
) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    seen: list[dict[str, Any]] = []
    client = RawClient(base_url, key) if client_kind == "raw" else HttpxClient(base_url, key)
    try:
        start = time.perf_counter()

        async def one(due: float) -> None:
            nonlocal errors
            try:
                status, body = await client.get(f"/v1/bulk-actions/{action_id}")
            except (httpx.HTTPError, OSError, asyncio.IncompleteReadError):
                errors += 1
                return
            latencies.append((time.perf_counter() - due) * 1000)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200 and len(seen) < 100_000:
                seen.append(json.loads(body))

        tasks = []
        total = int(rate * seconds)
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(due)))
            if seen and seen[-1]["status"] in ("COMPLETED", "CANCELLED"):
                break
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    finally:
        await client.close()
    processed = [s["counts"]["processed"] for s in seen]
    return {
        "requests": len(latencies) + errors,
        "errors": errors,
        "statuses": statuses,
        "achieved_rate": round((len(latencies) + errors) / elapsed, 1),
        "window_seconds": round(elapsed, 1),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(max(latencies), 2),
        "processed_during_window": [min(processed, default=0), max(processed, default=0)],
        "last_status": seen[-1]["status"] if seen else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=200.0, help="GET requests per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="longest polling window")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=None, help="default: a temp dir, removed after")
    parser.add_argument(
        "--client",
        choices=["raw", "httpx"],
        default="raw",
        help="raw: a minimal asyncio HTTP/1.1 client (default); httpx: httpx.AsyncClient",
    )
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="bulk-bench-api-"))
    csv_path = data_dir / f"contacts-{args.rows}.csv"
    counts = write_contacts_csv(csv_path, args.rows)
    file_mb = round(csv_path.stat().st_size / 1e6, 1)
    server = ApiServer(data_dir, workers=args.workers).start()
    try:
        key = create_account(data_dir, "bench", "--requests-per-minute", str(10**9))
        with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=600) as c:
            started = time.perf_counter()
            with csv_path.open("rb") as f:
                response = c.post(
                    "/v1/bulk-actions",
                    data={"entity": "contact", "action": "insert"},
                    files={"file": (csv_path.name, f, "text/csv")},
                )
            accepted_s = time.perf_counter() - started
            response.raise_for_status()
            action_id = response.json()["id"]
        result = asyncio.run(poll(server.base_url, key, action_id, args.rate, args.seconds, args.client))
        with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
            final = c.get(f"/v1/bulk-actions/{action_id}").json()
    finally:
        server.stop()
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    report = {
        "rows": args.rows,
        "file_mb": file_mb,
        "expected": {"valid": counts.valid, "invalid": counts.invalid, "duplicates": counts.duplicates},
        "accepted_after_s": round(accepted_s, 2),
        "rate_asked": args.rate,
        "client": args.client,
        **result,
        "final_counts": final["counts"],
        "final_status": final["status"],
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
    }
    print(json.dumps(report, indent=2))
    if args.markdown:
        print(
            f"| {args.rows:,} | {args.client} | {args.rate:.0f} | {result['achieved_rate']} | {result['requests']} | "
            f"{result['p50_ms']} | {result['p95_ms']} | {result['p99_ms']} | {result['max_ms']} | "
            f"{result['errors']} | {report['accepted_after_s']} |"
        )


if __name__ == "__main__":
    main()
