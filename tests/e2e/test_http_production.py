"""The HTTP API on the production stack: PostgreSQL events, RabbitMQ transport,
MongoDB entities, read models, accounts and rate limits, and real relay / projector /
worker processes beside an API-only ``bulkactions serve``."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import require_server
from tests.e2e.http_server import fresh_window, wait_finished
from tests.integration.production_stack import ProductionStack, postgres_error, rabbitmq_error
from tests.mongo_server import fresh_database

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture
def stack(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[ProductionStack, dict[str, str]]]:
    for name, problem in (("PostgreSQL", postgres_error()), ("RabbitMQ", rabbitmq_error())):
        if problem:
            require_server(name, problem)
    uri, database = fresh_database(request)
    mongo = {"BULK_DOCUMENT_STORE": "mongodb", "BULK_MONGODB_URI": uri, "BULK_MONGODB_DATABASE": database}
    with ProductionStack(tmp_path) as running:
        for name in ("relay", "projector", "worker"):
            running.start(name, name, **mongo)
        yield running, mongo


def _account(stack: ProductionStack, mongo: dict[str, str], name: str, *options: str) -> str:
    done = stack.run("accounts", "create", name, "--json", *options, **mongo)
    assert done.returncode == 0, done.stderr
    key: str = json.loads(done.stdout.splitlines()[-1])["api_key"]
    return key


def test_an_upload_is_imported_through_the_api_on_the_production_stack(
    stack: tuple[ProductionStack, dict[str, str]],
) -> None:
    running, mongo = stack
    base = running.start_api(**mongo)
    key, other = _account(running, mongo, "prod"), _account(running, mongo, "other")
    tag = uuid.uuid4().hex[:8]
    rows = ["email,first_name"] + [f"p{i}.{tag}@example.com,P{i}" for i in range(3000)] + ["bad-email,=cmd"]
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
        response = c.post(
            "/v1/bulk-actions",
            data={"entity": "contact", "action": "insert", "chunk_size": "250"},
            files={"file": ("prod.csv", "\n".join(rows).encode(), "text/csv")},
        )
        assert response.status_code == 202, response.text
        action_id = response.json()["id"]
        # Pushed progress (Server-Sent Events) from the MongoDB read model, to the end.
        with c.stream("GET", f"/v1/bulk-actions/{action_id}/progress", timeout=180) as pushed:
            lines = [line for line in pushed.iter_lines() if line.startswith(("event:", "data:"))]
        assert lines[-2] == "event: final", lines
        final = json.loads(lines[-1].removeprefix("data:"))
        done = wait_finished(c, action_id, timeout=180)
        assert done["status"] == final["status"] == "COMPLETED"
        counts = {"total": 3001, "processed": 3001, "succeeded": 3000, "failed": 1, "skipped": 0}
        assert done["counts"] == final["counts"] == counts
        failed = list(csv.DictReader(io.StringIO(c.get(f"/v1/bulk-actions/{action_id}/results/failed.csv").text)))
        assert [(r["row"], r["first_name"]) for r in failed] == [("3001", "'=cmd")]
        history = c.get(f"/v1/bulk-actions/{action_id}/records/3001/history").json()
        assert [e["type"] for e in history["events"]] == ["ChunkQueued", "RecordFailed"]
        with c.stream("GET", f"/v1/bulk-actions/{action_id}/events") as streamed:
            types = [json.loads(line)["type"] for line in streamed.iter_lines() if line]
        assert types.count("RecordSucceeded") == 3000 and types[0] == "Created"
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {other}"}, timeout=60) as intruder:
        assert intruder.get(f"/v1/bulk-actions/{action_id}").status_code == 404
        assert intruder.get("/v1/bulk-actions").json()["items"] == []


def test_rate_limits_hold_on_the_production_stack(stack: tuple[ProductionStack, dict[str, str]]) -> None:
    running, mongo = stack
    base = running.start_api(**mongo)
    key = _account(running, mongo, "limited", "--requests-per-minute", "5", "--records-per-day", "3")
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
        body = {"entity": "contact", "action": "insert", "records": [{"email": f"x{i}@example.com"} for i in range(4)]}
        fresh_window()
        over_quota = c.post("/v1/bulk-actions", json=body)
        assert over_quota.status_code == 429 and over_quota.json()["limit"] == "records_per_day"
        codes = [c.get("/v1/bulk-actions").status_code for _ in range(6)]
    assert codes == [200, 200, 200, 200, 429, 429]  # 5 per window, one spent on the POST
