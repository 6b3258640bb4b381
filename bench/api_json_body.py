"""Submitting records inline as one JSON body: time to the 202 and the API process's
memory, on the embedded default.

Starts a real ``bulkactions serve`` on a fresh data dir, POSTs one
``application/json`` body of N contacts to /v1/bulk-actions, and reports how long the
202 took and the API process's peak RSS (VmHWM, Linux) before and after; then waits
for the action to complete and reports its counts. Prints one JSON object.

    .venv/bin/python bench/api_json_body.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e.http_server import ApiServer, create_account, wait_finished  # noqa: E402


def peak_rss_mb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    assert found, "VmHWM not in /proc/<pid>/status (Linux only)"
    return int(found.group(1)) // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="bulk-bench-json-"))
    records = [{"email": f"u{i}@example.com", "first_name": "Ada", "last_name": "Lovelace"} for i in range(args.rows)]
    body = orjson.dumps({"entity": "contact", "action": "insert", "records": records})
    del records
    server = ApiServer(data_dir, workers=args.workers).start()
    try:
        assert server.process is not None
        key = create_account(data_dir, "bench", "--records-per-day", str(10**9))
        with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=600) as c:
            before = peak_rss_mb(server.process.pid)
            started = time.perf_counter()
            response = c.post("/v1/bulk-actions", content=body, headers={"content-type": "application/json"})
            accepted_s = time.perf_counter() - started
            assert response.status_code == 202, response.text
            after = peak_rss_mb(server.process.pid)
            final = wait_finished(c, response.json()["id"], timeout=3600)
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    report = {
        "rows": args.rows,
        "body_mb": round(len(body) / 1e6, 1),
        "accepted_after_s": round(accepted_s, 2),
        "api_peak_rss_mb_before": before,
        "api_peak_rss_mb_after": after,
        "final_status": final["status"],
        "final_counts": final["counts"],
        "python": platform.python_version(),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
