"""Contract of the WebhookDeliveries port: a delivery is scheduled once, claimed by one
sender at a time for one attempt, due again once its lease ends (a killed sender loses
nothing), and every attempt is kept once, in order, shown only to its account."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from application.ports.webhooks import DELIVERED, FAILED, PENDING, Delivery, DeliveryAttempt
from tests.contract import adapters
from tests.waiting import run_in_threads

NOW = 1_800_000_000.0


@pytest.fixture(params=sorted(adapters.WEBHOOK_DELIVERIES))
def deliveries_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    yield from adapters.several(adapters.WEBHOOK_DELIVERIES, request, tmp_path)


@pytest.fixture
def store(deliveries_factory: Callable[[], Any]) -> Any:
    return deliveries_factory()


def delivery(n: int = 1, *, account: str = "acc_1", at: float = NOW) -> Delivery:
    return Delivery(
        f"d{n}", f"action-{n}", account, "completed", "https://example.com/hook", f'{{"id":"d{n}"}}', at, at + 86400
    )


def attempt(n: int, number: int, status: int | None, at: float = NOW) -> DeliveryAttempt:
    error = None if status == 200 else "answered HTTP 500"
    return DeliveryAttempt(f"d{n}", number, at, status, error, 12)


def test_a_delivery_is_scheduled_once_and_due_at_once(store: Any) -> None:
    assert store.schedule(delivery()) is True
    assert store.schedule(delivery()) is False
    [claimed] = store.claim_due(NOW, 30, 10)
    assert (claimed.delivery_id, claimed.attempts, claimed.state, claimed.payload) == ("d1", 1, PENDING, '{"id":"d1"}')
    assert claimed.next_attempt_at == NOW + 30


def test_a_claimed_delivery_is_not_due_again_until_its_lease_ends(store: Any) -> None:
    store.schedule(delivery())
    assert len(store.claim_due(NOW, 30, 10)) == 1
    assert store.claim_due(NOW + 29, 30, 10) == []
    [again] = store.claim_due(NOW + 30, 30, 10)  # the sender died mid-attempt: tried again
    assert again.attempts == 2


def test_only_due_deliveries_are_claimed_oldest_first_up_to_the_limit(store: Any) -> None:
    for n, at in ((1, NOW + 5), (2, NOW - 5), (3, NOW - 10), (4, NOW + 100)):
        store.schedule(delivery(n, at=at))
    assert [d.delivery_id for d in store.claim_due(NOW, 30, 1)] == ["d3"]
    assert [d.delivery_id for d in store.claim_due(NOW, 30, 10)] == ["d2"]
    assert [d.delivery_id for d in store.claim_due(NOW + 10, 30, 10)] == ["d1"]


def test_a_failed_attempt_is_recorded_and_the_delivery_is_due_at_its_next_time(store: Any) -> None:
    store.schedule(delivery())
    store.claim_due(NOW, 30, 10)
    store.record(attempt(1, 1, 500), PENDING, NOW + 7)
    assert store.claim_due(NOW + 6, 30, 10) == []
    [second] = store.claim_due(NOW + 7, 30, 10)
    assert second.attempts == 2
    store.record(attempt(1, 2, 200, NOW + 7), DELIVERED, None)
    assert store.claim_due(NOW + 10_000, 30, 10) == []
    [(shown, attempts)] = store.for_action("acc_1", "action-1")
    assert (shown.state, shown.attempts, shown.next_attempt_at) == (DELIVERED, 2, None)
    assert [(a.attempt, a.status_code, a.error) for a in attempts] == [(1, 500, "answered HTTP 500"), (2, 200, None)]
    assert attempts[0] == attempt(1, 1, 500)


def test_a_given_up_delivery_is_never_due_again(store: Any) -> None:
    store.schedule(delivery())
    store.claim_due(NOW, 30, 10)
    store.record(attempt(1, 1, None), FAILED, None)
    assert store.claim_due(NOW + 10**6, 30, 10) == []
    assert store.for_action("acc_1", "action-1")[0][0].state == FAILED


def test_an_attempt_recorded_twice_is_kept_once(store: Any) -> None:
    store.schedule(delivery())
    store.claim_due(NOW, 30, 10)
    store.record(attempt(1, 1, 500), PENDING, NOW + 1)
    store.record(attempt(1, 1, 500), PENDING, NOW + 1)
    assert len(store.for_action("acc_1", "action-1")[0][1]) == 1


def test_a_late_answer_to_an_attempt_whose_lease_ended_does_not_undo_the_next_one(store: Any) -> None:
    store.schedule(delivery())
    store.claim_due(NOW, 30, 10)
    store.claim_due(NOW + 30, 30, 10)  # attempt 2 started: attempt 1's sender stalled
    store.record(attempt(1, 2, 200, NOW + 31), DELIVERED, None)
    store.record(attempt(1, 1, 500, NOW + 40), PENDING, NOW + 41)  # attempt 1 answers late
    [(shown, attempts)] = store.for_action("acc_1", "action-1")
    assert shown.state == DELIVERED and store.claim_due(NOW + 100, 30, 10) == []
    assert [a.attempt for a in attempts] == [1, 2]


def test_an_actions_deliveries_are_shown_to_its_account_only(store: Any) -> None:
    store.schedule(delivery(1, account="acc_1"))
    assert store.for_action("acc_2", "action-1") == []
    assert store.for_action("acc_1", "action-2") == []
    assert [d.delivery_id for d, _ in store.for_action("acc_1", "action-1")] == ["d1"]


def test_senders_sharing_the_store_never_claim_the_same_attempt(deliveries_factory: Callable[[], Any]) -> None:
    first = deliveries_factory()
    for n in range(20):
        first.schedule(delivery(n))
    senders = [deliveries_factory() for _ in range(4)]
    taken: list[tuple[str, int]] = []
    lock = threading.Lock()

    def claim(sender: Any) -> None:
        while found := sender.claim_due(NOW, 30, 3):
            with lock:
                taken.extend((d.delivery_id, d.attempts) for d in found)

    run_in_threads(claim, [(s,) for s in senders])
    assert sorted(taken) == sorted((f"d{n}", 1) for n in range(20))
