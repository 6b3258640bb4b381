"""Completion webhooks on the production stack: PostgreSQL events, RabbitMQ, MongoDB
(deliveries, accounts), the relay / projector / worker processes, an API-only `serve`,
and `bulkactions webhooks` as its own process, killed with SIGKILL mid-retry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import require_server
from tests.e2e.http_server import wait_finished
from tests.e2e.webhook_receiver import WebhookReceiver, signature_is_valid
from tests.integration.production_stack import ProductionStack, postgres_error, rabbitmq_error
from tests.mongo_server import fresh_database
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

FAST_RETRIES = {
    "BULK_WEBHOOK_ALLOW_PRIVATE": "1",
    "BULK_WEBHOOK_BACKOFF_BASE_SECONDS": "0.2",
    "BULK_WEBHOOK_BACKOFF_MAX_SECONDS": "0.5",
    "BULK_WEBHOOK_TIMEOUT_SECONDS": "1",
}


@pytest.fixture
def stack(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[ProductionStack, dict[str, str]]]:
    for name, problem in (("PostgreSQL", postgres_error()), ("RabbitMQ", rabbitmq_error())):
        if problem:
            require_server(name, problem)
    uri, database = fresh_database(request)
    env = {"BULK_DOCUMENT_STORE": "mongodb", "BULK_MONGODB_URI": uri, "BULK_MONGODB_DATABASE": database}
    env |= FAST_RETRIES
    with ProductionStack(tmp_path) as running:
        for name in ("relay", "projector", "worker"):
            running.start(name, name, **env)
        yield running, env


def _deliveries(client: httpx.Client, action_id: str) -> list[dict[str, Any]]:
    answer = client.get(f"/v1/bulk-actions/{action_id}/webhook-deliveries")
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["deliveries"]
    return found


def test_the_webhooks_process_delivers_after_being_killed_mid_retry(
    stack: tuple[ProductionStack, dict[str, str]],
) -> None:
    running, env = stack
    base = running.start_api(**env)
    done = running.run("accounts", "create", "prod", "--json", **env)
    assert done.returncode == 0, done.stderr
    owner = json.loads(done.stdout.splitlines()[-1])
    running.start("webhooks", "webhooks", **env)
    with WebhookReceiver() as receiver, httpx.Client(base_url=base, timeout=60) as client:
        receiver.fail_always()
        client.headers["Authorization"] = f"Bearer {owner['api_key']}"
        records = [{"email": "ada@example.com"}, {"email": "bad"}, {"email": "grace@example.com"}]
        body = {"entity": "contact", "action": "insert", "records": records, "callback_url": receiver.url}
        answer = client.post("/v1/bulk-actions", json=body)
        assert answer.status_code == 202, answer.text
        action_id = answer.json()["id"]
        assert wait_finished(client, action_id, timeout=120)["status"] == "COMPLETED"
        # Two failed attempts recorded (the receiver seeing a second request is not enough:
        # an attempt in flight when the process is killed is never recorded).
        wait_for(lambda: sum(len(d["attempts"]) for d in _deliveries(client, action_id)) >= 2, 60, "two attempts")
        running.kill("webhooks")  # SIGKILL, mid-retry
        receiver.succeed_from_now()
        running.start("webhooks", "webhooks", **env)
        wait_for(receiver.delivered, 60, "the delivery after the restart")
        [delivery] = wait_for(
            lambda: (d := _deliveries(client, action_id)) and d[0]["state"] == "delivered" and d, 10, "the record"
        )
    [delivered] = receiver.delivered()
    assert signature_is_valid(owner["webhook_secret"], delivered)
    assert delivered.json["data"]["counts"] == {"total": 3, "processed": 3, "succeeded": 2, "failed": 1, "skipped": 0}
    statuses = [a["status_code"] for a in delivery["attempts"]]
    assert statuses[-1] == 200 and set(statuses[:-1]) <= {500, None} and statuses.count(500) >= 2
