"""RabbitMQ transport on a real broker: what the shared contract cannot see."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from infrastructure.rabbitmq.transport import RabbitMQTransport
from tests.conftest import require_server
from tests.integration.production_stack import delete_vhost, new_vhost, rabbitmq_error, rabbitmqctl, vhost_url
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def vhost() -> Iterator[str]:
    problem = rabbitmq_error()
    if problem:
        require_server("RabbitMQ", problem)
    name = new_vhost("bulk_r")
    yield name
    delete_vhost(name)


def _consume(
    transport: RabbitMQTransport, queue: str, handler: Any, **kw: Any
) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=transport.consume, args=(queue, handler, stop), kwargs=kw, daemon=True)
    thread.start()
    return stop, thread


def test_queues_are_durable_quorum_queues_with_a_delivery_limit_and_a_dead_letter_queue(vhost: str) -> None:
    transport = RabbitMQTransport(vhost_url(vhost), delivery_limit=4, prefetch=2)
    transport.publish("work", [b"x"])
    listing = rabbitmqctl("list_queues", "-p", vhost, "name", "type", "durable", "arguments")
    rows = {line.split("\t")[0]: line for line in listing.splitlines() if line.strip()}
    assert "quorum" in rows["work"] and "\ttrue\t" in rows["work"]
    assert "x-delivery-limit" in rows["work"] and "work.dead" in rows["work"]
    assert "quorum" in rows["work.dead"]
    transport.close()


def test_a_handler_longer_than_the_heartbeat_keeps_its_connection_and_is_acked_once(vhost: str) -> None:
    # Heartbeat of 2 s: a blocking handler of 7 s would have the broker drop the
    # connection (and redeliver) if the handler ran on the connection's thread.
    transport = RabbitMQTransport(vhost_url(vhost, "?heartbeat=2"), delivery_limit=5, prefetch=1)
    publisher = RabbitMQTransport(vhost_url(vhost), delivery_limit=5, prefetch=1)
    publisher.publish("slow", [b"long chunk"])
    attempts: list[int] = []
    done = threading.Event()

    def slow(body: bytes, attempt: int) -> None:
        attempts.append(attempt)
        if attempt == 1:
            connections_during.extend(_connections(vhost))
        time.sleep(7)
        done.set()

    connections_during: list[str] = []
    stop, thread = _consume(transport, "slow", slow)
    assert done.wait(30)
    wait_for(lambda: _queue_totals(vhost, "slow") == (0, 0), 20, "the ack")
    # The consumer's connection from the start of the handler is still the one open.
    assert set(connections_during) <= set(_connections(vhost))
    stop.set()
    thread.join(timeout=30)
    assert attempts == [1]
    transport.close()
    publisher.close()


def _connections(vhost: str) -> list[str]:
    listing = rabbitmqctl("list_connections", "-p", vhost, "name", "vhost")
    return [line.split("\t")[0] for line in listing.splitlines() if line.endswith("\t" + vhost)]


def _queue_totals(vhost: str, queue: str) -> tuple[int, int]:
    """(ready, unacknowledged) messages of ``queue``, as the broker counts them."""
    listing = rabbitmqctl("list_queues", "-p", vhost, "name", "messages_ready", "messages_unacknowledged")
    for line in listing.splitlines():
        name, ready, unacked = line.split("\t")
        if name == queue:
            return int(ready), int(unacked)
    raise AssertionError(f"no queue {queue}")


def test_a_consumer_reconnects_after_the_broker_drops_its_connection(vhost: str) -> None:
    transport = RabbitMQTransport(vhost_url(vhost), delivery_limit=5, prefetch=4)
    received: list[bytes] = []
    transport.publish("drop", [b"before"])
    stop, thread = _consume(transport, "drop", lambda body, attempt: received.append(body))
    wait_for(lambda: received == [b"before"], 20, "the first message")
    rabbitmqctl("close_all_connections", "--vhost", vhost, "fault test")
    wait_for(lambda: transport.ready_and_consumers("drop")[1] == 0, 20, "the broker to drop the consumer")
    transport.publish("drop", [b"after"])  # the publisher reconnects too
    wait_for(lambda: received == [b"before", b"after"], 30, "the message published after the drop")
    stop.set()
    thread.join(timeout=30)
    transport.close()


def test_stop_lets_the_message_in_hand_finish_and_be_acked(vhost: str) -> None:
    transport = RabbitMQTransport(vhost_url(vhost), delivery_limit=5, prefetch=1)
    transport.publish("graceful", [b"one"])
    started, finished = threading.Event(), threading.Event()

    def handler(body: bytes, attempt: int) -> None:
        started.set()
        time.sleep(1.5)
        finished.set()

    stop, thread = _consume(transport, "graceful", handler)
    assert started.wait(20)
    stop.set()
    thread.join(timeout=30)
    assert finished.is_set() and not thread.is_alive()
    # Acked before the connection closed: nothing left to redeliver.
    assert transport.depth("graceful") == 0
    transport.close()


def test_messages_a_stopping_consumer_took_and_did_not_start_go_back_uncounted(vhost: str) -> None:
    # Closing the channel would return them *counted* (RabbitMQ before 4.3): a worker
    # stopped during a deployment must not bring its prefetched chunks closer to the
    # dead-letter queue.
    transport = RabbitMQTransport(vhost_url(vhost), delivery_limit=5, prefetch=3)
    transport.publish("prefetched", [b"one", b"two", b"three"])
    started, release = threading.Event(), threading.Event()

    def slow(body: bytes, attempt: int) -> None:
        started.set()
        release.wait(20)

    stop, thread = _consume(transport, "prefetched", slow)
    assert started.wait(20)
    wait_for(lambda: _queue_totals(vhost, "prefetched") == (0, 3), 20, "all three taken by the consumer")
    stop.set()  # while the first is in hand
    release.set()
    thread.join(timeout=30)
    attempts: dict[bytes, int] = {}
    stop, thread = _consume(transport, "prefetched", attempts.setdefault)
    wait_for(lambda: len(attempts) == 2, 20, "the two messages not started")
    stop.set()
    thread.join(timeout=30)
    assert attempts == {b"two": 1, b"three": 1}
    transport.close()
