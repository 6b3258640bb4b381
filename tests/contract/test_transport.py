"""Contract of the MessageTransport port: at-least-once delivery, redelivery on
failure, dead-lettering after the delivery limit, and an infrastructure fault
(``StoreUnavailableError``) that never counts as an attempt."""

from __future__ import annotations

import threading
import uuid
from typing import Any

from application.faults import StoreUnavailableError
from tests.waiting import wait_for

DEADLINE_S = 20.0


def _consume_in_background(
    transport: Any, queue: str, handler: Any, **kw: Any
) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=transport.consume, args=(queue, handler, stop), kwargs=kw, daemon=True)
    thread.start()
    return stop, thread


def test_published_messages_are_all_delivered(transport: Any) -> None:
    queue = f"test.{uuid.uuid4()}"
    bodies = [f"m{i}".encode() for i in range(50)]
    transport.publish(queue, bodies)
    received: list[bytes] = []
    stop, thread = _consume_in_background(transport, queue, lambda body, attempt: received.append(body))
    wait_for(lambda: len(received) >= 50, DEADLINE_S, "50 deliveries")
    stop.set()
    thread.join(timeout=10)
    assert sorted(received) == sorted(bodies)


def test_a_failing_handler_gets_the_message_again(transport: Any) -> None:
    queue = f"test.{uuid.uuid4()}"
    attempts: list[int] = []

    def flaky(body: bytes, attempt: int) -> None:
        attempts.append(attempt)
        if len(attempts) == 1:
            raise RuntimeError("first delivery fails")

    transport.publish(queue, [b"once"])
    stop, thread = _consume_in_background(transport, queue, flaky)
    wait_for(lambda: len(attempts) >= 2, DEADLINE_S, "a redelivery")
    stop.set()
    thread.join(timeout=10)
    assert attempts[:2] == [1, 2]


def test_a_message_that_always_fails_is_dead_lettered_once(transport: Any) -> None:
    queue = f"test.{uuid.uuid4()}"
    dead: list[bytes] = []

    def poison(body: bytes, attempt: int) -> None:
        raise RuntimeError("always fails")

    transport.publish(queue, [b"poison", b"ok"])
    delivered_ok: list[bytes] = []

    def handler(body: bytes, attempt: int) -> None:
        if body == b"poison":
            poison(body, attempt)
        delivered_ok.append(body)

    stop, thread = _consume_in_background(transport, queue, handler, dead_letter=dead.append)
    wait_for(
        lambda: dead == [b"poison"] and delivered_ok == [b"ok"], DEADLINE_S, "the poison message to be dead-lettered"
    )
    stop.set()
    thread.join(timeout=10)
    assert dead == [b"poison"]


def test_a_message_given_back_for_an_infrastructure_fault_is_never_counted_nor_dead_lettered(transport: Any) -> None:
    queue = f"test.{uuid.uuid4()}"
    attempts: list[int] = []
    dead: list[bytes] = []
    # Twice the delivery limit (3): counted, it would have been dead-lettered.
    faults = 6

    def store_down_for_a_while(body: bytes, attempt: int) -> None:
        attempts.append(attempt)
        if len(attempts) <= faults:
            raise StoreUnavailableError("the store is down")

    transport.publish(queue, [b"chunk"])
    stop, thread = _consume_in_background(transport, queue, store_down_for_a_while, dead_letter=dead.append)
    wait_for(lambda: len(attempts) > faults, DEADLINE_S, "the delivery after the fault")
    stop.set()
    thread.join(timeout=10)
    assert attempts == [1] * (faults + 1)
    assert dead == []


def test_a_dead_letter_given_back_for_an_infrastructure_fault_is_handed_over_again(transport: Any) -> None:
    queue = f"test.{uuid.uuid4()}"
    dead: list[bytes] = []

    def always_fails(body: bytes, attempt: int) -> None:
        raise RuntimeError("always fails")

    def store_down_once(body: bytes) -> None:
        dead.append(body)
        if len(dead) == 1:
            raise StoreUnavailableError("the store is down")

    transport.publish(queue, [b"poison"])
    stop, thread = _consume_in_background(transport, queue, always_fails, dead_letter=store_down_once)
    wait_for(lambda: len(dead) >= 2, DEADLINE_S, "the dead letter handed over again")
    stop.set()
    thread.join(timeout=10)
    assert dead[:2] == [b"poison", b"poison"]


def test_depth_counts_messages_not_yet_consumed(transport: Any) -> None:
    queue = f"test.{uuid.uuid4()}"
    transport.publish(queue, [b"a", b"b", b"c"])
    wait_for(lambda: transport.depth(queue) == 3, DEADLINE_S, "a depth of 3")


def test_ping_answers_while_the_broker_is_reachable(transport: Any) -> None:
    transport.ping()
    transport.ping()  # again, on the connection the first one left


def test_depth_of_a_queue_never_published_to_is_zero(transport: Any) -> None:
    assert transport.depth(f"test.{uuid.uuid4()}") == 0
