"""Completion webhooks through a real `bulkactions serve` and the real CLI: a signed
POST of the final status and counts, retried with backoff, each attempt recorded, and
delivered even when the sender is killed with SIGKILL between attempts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.cli import bulkactions, import_args
from tests.e2e.http_server import ApiServer, wait_finished
from tests.e2e.webhook_receiver import WebhookReceiver, signature_is_valid
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

# Retries after 0.2 s, 0.4 s, then every 0.5 s; an attempt waits at most 1 s.
FAST_RETRIES = {
    "BULK_WEBHOOK_ALLOW_PRIVATE": "1",
    "BULK_WEBHOOK_BACKOFF_BASE_SECONDS": "0.2",
    "BULK_WEBHOOK_BACKOFF_MAX_SECONDS": "0.5",
    "BULK_WEBHOOK_TIMEOUT_SECONDS": "1",
}
RECORDS = [
    {"email": "ada@example.com", "first_name": "Ada"},
    {"email": "not-an-email"},
    {"email": "ADA@example.com"},  # the same contact again: skipped
    {"email": "grace@example.com"},
]


def account(data_dir: Path, name: str) -> dict[str, Any]:
    run = bulkactions(data_dir, "accounts", "create", name, "--json")
    assert run.code == 0, run.stderr
    created: dict[str, Any] = run.json_last()
    assert created["webhook_secret"].startswith("whsec_")
    return created


def submit(client: httpx.Client, callback_url: str) -> str:
    body = {"entity": "contact", "action": "insert", "records": RECORDS, "callback_url": callback_url}
    answer = client.post("/v1/bulk-actions", json=body)
    assert answer.status_code == 202, answer.text
    action_id: str = answer.json()["id"]
    return action_id


def deliveries(client: httpx.Client, action_id: str) -> dict[str, Any]:
    answer = client.get(f"/v1/bulk-actions/{action_id}/webhook-deliveries")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def assert_final_counts(payload: dict[str, Any], action_id: str) -> None:
    assert payload["type"] == "bulk_action.completed"
    data = payload["data"]
    assert (data["id"], data["status"], data["entity"], data["action"]) == (action_id, "COMPLETED", "contact", "insert")
    assert data["counts"] == {"total": 4, "processed": 4, "succeeded": 2, "failed": 1, "skipped": 1}


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


def test_a_completed_action_is_posted_signed_and_retried_until_the_receiver_takes_it(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    receiver.failures = 2
    owner, other = account(tmp_path, "acme"), account(tmp_path, "other")
    server = ApiServer(tmp_path, FAST_RETRIES).start()
    try:
        with server.client(owner["api_key"]) as client, server.client(other["api_key"]) as stranger:
            action_id = submit(client, receiver.url)
            wait_finished(client, action_id)
            wait_for(receiver.delivered, 30, "the webhook to be delivered")
            shown = wait_for(
                lambda: (d := deliveries(client, action_id))["deliveries"][0]["state"] == "delivered" and d,
                10,
                "the delivery to be recorded",
            )
            foreign = stranger.get(f"/v1/bulk-actions/{action_id}/webhook-deliveries")
            assert foreign.status_code == 404 and foreign.json()["type"].endswith("/not-found")
            own = stranger.post("/v1/bulk-actions", json={"entity": "contact", "action": "insert", "records": RECORDS})
            own_id = own.json()["id"]
            wait_finished(stranger, own_id)
            assert deliveries(stranger, own_id) == {"action_id": own_id, "callback_url": None, "deliveries": []}
    finally:
        server.stop()
    assert [r.answered for r in receiver.received] == [500, 500, 200]
    for received in receiver.received:
        assert received.path == "/hooks/bulk"
        assert signature_is_valid(owner["webhook_secret"], received)
        assert not signature_is_valid("whsec_another", received)
        assert received.body == receiver.received[0].body  # the same delivery, signed afresh
    delivered = receiver.received[-1]
    assert_final_counts(delivered.json, action_id)
    assert delivered.headers["Webhook-Id"] == delivered.json["id"]
    assert shown["callback_url"] == receiver.url
    [delivery] = shown["deliveries"]
    assert (delivery["id"], delivery["event"], delivery["next_attempt_at"]) == (delivered.json["id"], "completed", None)
    assert [(a["attempt"], a["status_code"]) for a in delivery["attempts"]] == [(1, 500), (2, 500), (3, 200)]
    assert [a["error"] for a in delivery["attempts"]] == ["answered HTTP 500", "answered HTTP 500", None]


def test_a_delivery_being_retried_arrives_after_the_sender_is_killed_and_restarted(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    receiver.fail_always()
    owner = account(tmp_path, "acme")
    server = ApiServer(tmp_path, FAST_RETRIES).start()
    with server.client(owner["api_key"]) as client:
        action_id = submit(client, receiver.url)
        wait_finished(client, action_id)
        wait_for(lambda: len(receiver.received) >= 2, 30, "two failed attempts")
    runtime_pid = _runtime_child(server)
    server.kill()  # SIGKILL: the API process; its runtime child (the sender) ends with it
    wait_for(lambda: not _alive(runtime_pid), 10, "the runtime process to end")
    failed = len(receiver.received)
    assert receiver.delivered() == []
    receiver.succeed_from_now()
    server.start()
    try:
        with server.client(owner["api_key"]) as client:
            wait_for(receiver.delivered, 60, "the delivery after the restart")
            shown = wait_for(
                lambda: (d := deliveries(client, action_id))["deliveries"][0]["state"] == "delivered" and d,
                10,
                "the delivery to be recorded",
            )
    finally:
        server.stop()
    assert_final_counts(receiver.delivered()[0].json, action_id)
    assert signature_is_valid(owner["webhook_secret"], receiver.delivered()[0])
    attempts = shown["deliveries"][0]["attempts"]
    assert attempts[-1]["status_code"] == 200 and len(receiver.delivered()) == 1
    # Every attempt that got an answer before the kill is recorded with it.
    assert [a["status_code"] for a in attempts[:-1] if a["status_code"] is not None] == [500] * (len(attempts) - 1)
    assert len(attempts) >= failed + 1


def test_a_private_callback_url_is_refused_up_front_unless_allowed(tmp_path: Path) -> None:
    owner = account(tmp_path, "acme")
    server = ApiServer(tmp_path).start()  # BULK_WEBHOOK_ALLOW_PRIVATE unset
    try:
        with server.client(owner["api_key"]) as client:
            for url in ("http://127.0.0.1:9/hook", "http://localhost/hook", "http://10.1.2.3/", "http://[::1]/"):
                answer = client.post(
                    "/v1/bulk-actions",
                    json={"entity": "contact", "action": "insert", "records": RECORDS, "callback_url": url},
                )
                assert answer.status_code == 422, (url, answer.text)
                assert answer.headers["content-type"].startswith("application/problem+json")
                assert answer.json()["type"].endswith("/invalid-callback-url"), answer.text
            for url in ("ftp://example.com/x", "not a url", "http:///nohost"):
                answer = client.post(
                    "/v1/bulk-actions",
                    data={"entity": "contact", "action": "insert", "callback_url": url},
                    files={"file": ("c.csv", b"email\nada@example.com\n", "text/csv")},
                )
                assert answer.status_code == 422, (url, answer.text)
            assert client.get("/v1/bulk-actions").json()["items"] == []  # nothing was created
    finally:
        server.stop()
    path = tmp_path / "contacts.csv"
    path.write_text("email\nada@example.com\n")
    run = bulkactions(
        tmp_path, *import_args(path, "--account", owner["account_id"], "--callback-url", "http://127.0.0.1/")
    )
    assert run.code == 2, run.stderr
    assert run.stderr.count("\n") == 1 and "loopback, private or reserved" in run.stderr


def test_the_cli_import_makes_the_first_attempt_before_it_ends(tmp_path: Path, receiver: WebhookReceiver) -> None:
    owner = account(tmp_path, "acme")
    path = tmp_path / "contacts.csv"
    path.write_text(
        "email,first_name\nada@example.com,Ada\nnot-an-email,X\nADA@example.com,Again\ngrace@example.com,G\n"
    )
    options = ("--account", owner["account_id"], "--callback-url", receiver.url)
    run = bulkactions(tmp_path, *import_args(path, *options), env={**os.environ, **FAST_RETRIES})
    assert run.code == 0, run.stderr
    action_id = run.json_last()["action_id"]
    [delivered] = receiver.delivered()
    assert_final_counts(delivered.json, action_id)
    assert signature_is_valid(owner["webhook_secret"], delivered)
    no_secret = bulkactions(
        tmp_path, *import_args(path, "--callback-url", receiver.url), env={**os.environ, **FAST_RETRIES}
    )
    assert no_secret.code == 2 and "has no webhook secret" in no_secret.stderr


def _runtime_child(server: ApiServer) -> int:
    assert server.process is not None
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()
    assert children, "serve has no runtime child"
    return int(children[0])


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status
