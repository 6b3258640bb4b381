"""The webhook outbox on the embedded stores, with a receiving HTTP server: a cancelled
action is posted with the counts of the chunks processed before it was cancelled; a
step run again (a crash before its position was saved) schedules nothing twice; an
action without a callback is never posted; a delivery is given up after its window."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from application.accounts import AccountLimits
from domain.bulk_action import BulkAction, BulkChunk
from infrastructure.bootstrap import Container, bootstrap
from infrastructure.settings import Settings
from tests.e2e.webhook_receiver import WebhookReceiver, signature_is_valid
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
LIMITS = AccountLimits(requests_per_minute=60, records_per_day=1000, max_active_actions=10)


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    settings = Settings(
        data_dir=tmp_path,
        webhook_allow_private=True,
        webhook_backoff_base_seconds=0.05,
        webhook_backoff_max_seconds=0.05,
        webhook_retry_for_seconds=0.3,
        webhook_timeout_seconds=1,
    )
    built = bootstrap(settings)
    yield built
    built.close()


def _action(container: Container, callback_url: str | None, account_id: str) -> BulkAction:
    """An action of two chunks, the first processed (1 succeeded, 1 failed), the second not."""
    action = BulkAction.submit(
        uuid.uuid4(), account_id, "contact", "insert", None, {"kind": "inline"}, 2, 4, None, callback_url
    )
    container.events.create_action(action)
    records = [{"row": n, "line": n + 1, "data": {"email": e}} for n, e in enumerate(["a@x.org", "b", "c@x.org"], 1)]
    container.events.store_chunks(
        [BulkChunk.queue(action.id, 0, 1, records[:2]), BulkChunk.queue(action.id, 1, 3, records[2:])]
    )
    action.mark_input_queued(3, 2)
    container.events.save_action(action)
    container.processor().process(action.id, 0)
    return action


def test_a_cancelled_action_is_posted_with_the_counts_of_its_processed_chunks(container: Container) -> None:
    account, _ = container.services.accounts.create("acme", LIMITS)
    with WebhookReceiver() as receiver:
        action = _action(container, receiver.url, account.account_id)
        silent = _action(container, None, account.account_id)
        container.services.cancellation.cancel(account.account_id, action.id)
        container.services.cancellation.cancel(account.account_id, silent.id)
        outbox = container.webhook_outbox()
        assert outbox.run_once() == 2  # one scheduled, one sent
        container.positions.set("webhooks", 0)  # as if the step crashed before saving its position
        assert outbox.run_once() == 0
    [received] = receiver.received
    assert signature_is_valid(account.webhook_secret or "", received)
    body = json.loads(received.body)
    assert body["type"] == "bulk_action.cancelled"
    assert body["data"]["status"] == "CANCELLED"
    assert body["data"]["counts"] == {"total": 3, "processed": 2, "succeeded": 1, "failed": 1, "skipped": 0}
    callback, [view] = container.services.webhooks.deliveries(account.account_id, action.id)
    assert callback == receiver.url and view.delivery.state == "delivered"
    assert container.services.webhooks.deliveries(account.account_id, silent.id) == (None, [])


def test_a_delivery_that_never_succeeds_is_given_up_after_its_window(container: Container) -> None:
    account, _ = container.services.accounts.create("acme", LIMITS)
    with WebhookReceiver(failures=10**9) as receiver:
        action = _action(container, receiver.url, account.account_id)
        container.services.cancellation.cancel(account.account_id, action.id)
        outbox = container.webhook_outbox()

        def given_up() -> bool:
            outbox.run_once()
            _, [view] = container.services.webhooks.deliveries(account.account_id, action.id)
            return view.delivery.state == "failed"

        wait_for(given_up, 10, "the delivery to be given up")
        attempts = len(receiver.received)
    _, [view] = container.services.webhooks.deliveries(account.account_id, action.id)
    assert len(view.attempts) == attempts >= 3
    assert {a.status_code for a in view.attempts} == {500}
    assert view.attempts[-1].at >= view.delivery.give_up_at  # the last one at the end of the window


def test_receivers_that_do_not_answer_hold_up_only_their_own_deliveries(container: Container) -> None:
    import socket
    import time

    account, _ = container.services.accounts.create("acme", LIMITS)
    silent = socket.socket()  # accepts connections (the kernel's backlog) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        with WebhookReceiver() as receiver:
            url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
            hanging = [_action(container, url, account.account_id) for _ in range(3)]
            answered = _action(container, receiver.url, account.account_id)
            for action in (*hanging, answered):
                container.services.cancellation.cancel(account.account_id, action.id)
            started = time.monotonic()
            container.webhook_outbox().run_once()
            took = time.monotonic() - started
            assert len(receiver.delivered()) == 1
    finally:
        silent.close()
    assert took < 2.5  # three timeouts of 1 s at once, not one after the other
    _, [view] = container.services.webhooks.deliveries(account.account_id, hanging[0].id)
    assert view.attempts[0].status_code is None and "timed out" in (view.attempts[0].error or "")
