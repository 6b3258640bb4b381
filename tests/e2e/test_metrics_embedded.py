"""Prometheus metrics of ``bulkactions serve`` on the embedded default: what its child
processes (workers, projector) count, read off its own ``/metrics``, equals the
action's counts, also across a kill and the resume that follows."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.http_server import ApiServer, create_account, wait_finished
from tests.e2e.metrics import Samples, scrape, total, value
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e


def _records(n: int, *, bad_every: int, repeat_every: int) -> list[dict[str, Any]]:
    tag = uuid.uuid4().hex[:8]
    rows = []
    for i in range(n):
        if i % bad_every == 0:
            rows.append({"email": f"not-an-email-{i}"})
        elif i % repeat_every == 0:
            rows.append({"email": f"u1.{tag}@example.com"})  # the same as row 1: skipped
        else:
            rows.append({"email": f"u{i}.{tag}@example.com", "first_name": f"F{i}"})
    return rows


def _submit(client: httpx.Client, records: list[dict[str, Any]]) -> str:
    response = client.post("/v1/bulk-actions", json={"entity": "contact", "action": "insert", "records": records})
    assert response.status_code == 202, response.text
    action_id: str = response.json()["id"]
    return action_id


def _assert_counted_once(samples: Samples, counts: dict[str, int]) -> None:
    for outcome in ("succeeded", "failed", "skipped"):
        counted = value(samples, "bulkactions_records_total", entity="contact", action="insert", outcome=outcome)
        assert counted == counts[outcome], outcome
    assert total(samples, "bulkactions_record_errors_total", entity="contact") == counts["failed"]


def test_serve_metrics_equal_the_actions_counts_after_a_real_import(tmp_path: Path) -> None:
    server = ApiServer(tmp_path).start()
    try:
        with server.client(create_account(tmp_path, "ops")) as client:
            action_id = _submit(client, _records(2500, bad_every=10, repeat_every=7))
            done = wait_finished(client, action_id)
            client.get("/v1/bulk-actions/not-a-uuid")  # a 404, under its route template
        counts = done["counts"]
        assert (counts["succeeded"], counts["failed"], counts["skipped"]) == (1928, 250, 322)
        metrics_url = server.base_url + "/metrics"
        # The queue gauge is sampled every 2 s; the rest is exact at once.
        samples = wait_for(
            lambda: (
                (s := scrape(metrics_url)) and value(s, "bulkactions_queue_messages", queue="bulk.chunks") == 0 and s
            ),
            10,
            "the queue gauge",
        )
        _assert_counted_once(samples, counts)
        assert value(samples, "bulkactions_record_errors_total", entity="contact", code="value_error") == 250
        chunks = value(samples, "bulkactions_chunk_duration_seconds_count", entity="contact", action="insert")
        assert chunks == 3  # 2,500 records in chunks of 1,000: one sample per chunk
        assert value(samples, "bulkactions_actions", status="COMPLETED") == 1
        assert value(samples, "bulkactions_actions", status="PROCESSING") == 0
        assert value(samples, "bulkactions_projection_lag_events") == 0
        assert value(samples, "bulkactions_relay_lag_events") == 0
        detail = "/v1/bulk-actions/{action_id}"
        assert (
            value(samples, "bulkactions_http_requests_total", method="POST", route="/v1/bulk-actions", status="202")
            == 1
        )
        assert value(samples, "bulkactions_http_requests_total", method="GET", route=detail, status="200") >= 1
        assert value(samples, "bulkactions_http_requests_total", method="GET", route=detail, status="404") == 1
        latency = "bulkactions_http_request_duration_seconds_count"
        assert value(samples, latency, method="GET", route=detail, status="404") == 1
        assert not [
            labels
            for (name, labels) in samples
            if name.startswith("bulkactions_http") and ("route", "/v1/bulk-actions/not-a-uuid") in labels
        ]
    finally:
        server.stop()


def test_an_action_interrupted_by_a_kill_and_resumed_is_counted_exactly_once(tmp_path: Path) -> None:
    server = ApiServer(tmp_path).start()
    key = create_account(tmp_path, "ops")
    with server.client(key) as client:
        action_id = _submit(client, _records(12_000, bad_every=50, repeat_every=1000))

        def under_way() -> bool:
            body = client.get(f"/v1/bulk-actions/{action_id}").json()
            return 0 < body["counts"]["processed"] < 9_000

        wait_for(under_way, 60, "the import to be under way")
    server.kill()  # SIGKILL: chunks in hand are redone by the next run's resume
    server.start()
    try:
        with server.client(key) as client:
            done = wait_finished(client, action_id, timeout=180)
        assert done["status"] == "COMPLETED" and done["counts"]["processed"] == 12_000
        _assert_counted_once(scrape(server.base_url + "/metrics"), done["counts"])
    finally:
        server.stop()
