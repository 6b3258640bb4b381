"""RabbitMQ transport (pika): durable quorum queues, publisher confirms, manual acks.

Topology per queue ``Q`` (declared idempotently by whoever touches it first):
- ``Q``: durable quorum queue with ``x-delivery-limit`` and a dead-letter exchange;
- ``Q.dead``: durable quorum queue receiving what ``Q`` dead-letters (at-least-once
  dead-lettering, so a message is never lost between the two queues).

Threads: pika connections are not thread-safe, so every thread gets its own
publishing connection, and each ``consume`` call owns its consuming connection. The
handler runs in a separate worker thread while the consuming thread keeps servicing
the connection (heartbeats), and the ack is handed back with
``add_callback_threadsafe``: a chunk that takes longer than the heartbeat never gets
the connection dropped under it.

pika has no automatic recovery, so both sides reconnect: ``publish`` republishes the
whole batch once on a new connection (at-least-once; consumers are idempotent), then
leaves a broker that stays away to its caller's fault policy; ``consume`` reconnects
until told to stop, saying so once per outage. Messages taken but not acked when a
connection dies are redelivered by the broker (which, before RabbitMQ 4.3, counts that
as a delivery: see ``ChunkWorker`` for why that never fails a chunk by itself).

A handler that raises ``StoreUnavailableError`` (an infrastructure fault, not the
message's) gives its message back *uncounted*: a fresh copy is published with a
confirm, then the delivery is acked. ``basic_nack(requeue=True)`` would count a
delivery, and so would holding the message past the broker's consumer timeout.
"""

from __future__ import annotations

import functools
import logging
import queue as queue_module
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pika  # type: ignore[import-untyped]
import pika.exceptions  # type: ignore[import-untyped]
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection  # type: ignore[import-untyped]

from application.faults import FaultEpisodes, StoreUnavailableError

log = logging.getLogger(__name__)

DEAD_LETTER_EXCHANGE = "bulk.dead-letter"
# Heartbeat we ask for (the broker may lower it): a dead peer is noticed within ~2x.
HEARTBEAT_SECONDS = 30
# One more on a new connection (a pooled one may have died idle); a broker that is
# away longer is the caller's fault policy's to wait out (one log line per outage).
PUBLISH_ATTEMPTS = 2
# How long a stopping consumer waits for the handler in flight before letting the
# broker redeliver its message.
STOP_GRACE_SECONDS = 60.0

# Any of these means the connection or channel is gone and must be reopened.
CONNECTION_ERRORS = (
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.AMQPChannelError,
    pika.exceptions.StreamLostError,
    ConnectionError,
    OSError,
)


def dead_letter_queue(queue_name: str) -> str:
    return f"{queue_name}.dead"


@dataclass(slots=True)
class _Delivery:
    connection: BlockingConnection
    channel: BlockingChannel
    queue: str
    delivery_tag: int
    body: bytes
    attempt: int
    dead: bool  # taken from the dead-letter queue


class RabbitMQTransport:
    def __init__(
        self, url: str, delivery_limit: int = 5, prefetch: int = 4, episodes: FaultEpisodes | None = None
    ) -> None:
        self.url = url
        self.delivery_limit = delivery_limit
        self.prefetch = prefetch
        self.episodes = episodes or FaultEpisodes()
        _quiet_pika()
        self._local = threading.local()
        self._publishers: list[BlockingConnection] = []
        self._publishers_lock = threading.Lock()

    # ------------------------------------------------------------------ connections

    def _parameters(self) -> pika.URLParameters:
        params = pika.URLParameters(self.url)
        if "heartbeat" not in self.url:
            params.heartbeat = HEARTBEAT_SECONDS
        if "blocked_connection_timeout" not in self.url:
            # A broker in a resource alarm blocks publishers; fail instead of hanging.
            params.blocked_connection_timeout = 120
        return params

    def _connect(self) -> BlockingConnection:
        return BlockingConnection(self._parameters())

    def declare(self, channel: BlockingChannel, queue_name: str) -> None:
        """Declare ``queue_name`` and its dead-letter queue (idempotent)."""
        dead = dead_letter_queue(queue_name)
        channel.exchange_declare(DEAD_LETTER_EXCHANGE, exchange_type="direct", durable=True)
        channel.queue_declare(dead, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_bind(dead, DEAD_LETTER_EXCHANGE, routing_key=dead)
        channel.queue_declare(
            queue_name,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                # RabbitMQ counts *redeliveries*: limit N allows N + 1 deliveries, so
                # N - 1 gives exactly ``delivery_limit`` attempts, as the port promises.
                "x-delivery-limit": max(self.delivery_limit - 1, 0),
                "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
                "x-dead-letter-routing-key": dead,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",  # required by at-least-once dead-lettering
            },
        )

    def _publisher(self) -> tuple[BlockingConnection, BlockingChannel]:
        """This thread's publishing connection, with confirms on."""
        conn: BlockingConnection | None = getattr(self._local, "conn", None)
        channel: BlockingChannel | None = getattr(self._local, "channel", None)
        if conn is not None and channel is not None and conn.is_open and channel.is_open:
            try:
                conn.process_data_events(0)  # services heartbeats; raises if it died idle
                return conn, channel
            except CONNECTION_ERRORS:
                self._drop_publisher()
        conn = self._connect()
        channel = conn.channel()
        channel.confirm_delivery()
        self._local.conn, self._local.channel, self._local.declared = conn, channel, set()
        with self._publishers_lock:
            self._publishers.append(conn)
        return conn, channel

    def _drop_publisher(self) -> None:
        conn: BlockingConnection | None = getattr(self._local, "conn", None)
        self._local.conn = self._local.channel = None
        if conn is not None:
            with self._publishers_lock:
                if conn in self._publishers:
                    self._publishers.remove(conn)
            _close_quietly(conn)

    # ------------------------------------------------------------------ port

    def publish(self, queue: str, bodies: Sequence[bytes]) -> None:
        """Returns once the broker has confirmed every body (persistent messages)."""
        self._send(queue, bodies, declaring=True)

    def _send(self, queue: str, bodies: Sequence[bytes], *, declaring: bool) -> None:
        properties = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent)
        for attempt in range(1, PUBLISH_ATTEMPTS + 1):
            try:
                _, channel = self._publisher()
                if declaring and queue not in self._local.declared:
                    self.declare(channel, queue)
                    self._local.declared.add(queue)
                for body in bodies:
                    # With confirms on, this blocks until the broker has the message.
                    channel.basic_publish("", queue, body, properties, mandatory=True)
                return
            except (pika.exceptions.NackError, pika.exceptions.UnroutableError, *CONNECTION_ERRORS):
                self._drop_publisher()
                if attempt == PUBLISH_ATTEMPTS:
                    raise

    def consume(
        self,
        queue: str,
        handler: Callable[[bytes, int], None],
        stop: threading.Event,
        *,
        dead_letter: Callable[[bytes], None] | None = None,
    ) -> None:
        """Deliver messages to ``handler`` until ``stop`` is set; reconnects on loss."""
        work: queue_module.Queue[_Delivery] = queue_module.Queue()
        runner = threading.Thread(
            target=self._run_handlers, args=(work, handler, dead_letter, stop), name=f"{queue}-handler", daemon=True
        )
        runner.start()
        backoff = 0.5
        where = f"consuming {queue}"
        try:
            while not stop.is_set():
                try:
                    self._consume_connection(queue, work, stop, runner, consume_dead=dead_letter is not None)
                    backoff = 0.5
                except CONNECTION_ERRORS as exc:
                    # Once per outage, not per attempt to reconnect.
                    self.episodes.failed(where, exc)
                    _discard_all(work)  # the broker redelivers whatever was not acked
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 10.0)
        finally:
            runner.join(timeout=STOP_GRACE_SECONDS)

    def _consume_connection(
        self,
        queue_name: str,
        work: queue_module.Queue[_Delivery],
        stop: threading.Event,
        runner: threading.Thread,
        *,
        consume_dead: bool,
    ) -> None:
        conn = self._connect()
        try:
            channel = conn.channel()
            self.declare(channel, queue_name)
            channel.basic_qos(prefetch_count=self.prefetch)

            def on_message(dead: bool, ch: BlockingChannel, method: Any, props: Any, body: bytes) -> None:
                headers = props.headers or {}
                attempt = int(headers.get("x-delivery-count", 0)) + 1
                source = dead_letter_queue(queue_name) if dead else queue_name
                work.put(_Delivery(conn, ch, source, method.delivery_tag, body, attempt, dead))

            tags = [channel.basic_consume(queue_name, functools.partial(on_message, False))]
            if consume_dead:
                dead = dead_letter_queue(queue_name)
                tags.append(channel.basic_consume(dead, functools.partial(on_message, True)))
            self.episodes.recovered(f"consuming {queue_name}")
            while not stop.is_set():
                conn.process_data_events(time_limit=0.2)
            # Stopping: take nothing new, let the handler in flight finish and ack, then
            # give back what was taken and not started (uncounted: closing the channel
            # would count a delivery for each).
            for tag in tags:
                channel.basic_cancel(tag)
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            while runner.is_alive() and time.monotonic() < deadline:
                conn.process_data_events(time_limit=0.1)
            self._give_back(work)
            conn.process_data_events(0)
        finally:
            _close_quietly(conn)

    def _run_handlers(
        self,
        work: queue_module.Queue[_Delivery],
        handler: Callable[[bytes, int], None],
        dead_letter: Callable[[bytes], None] | None,
        stop: threading.Event,
    ) -> None:
        """The handler thread: one delivery at a time, until stopped (what it has not
        started then is the consuming thread's to give back)."""
        while not stop.is_set():
            try:
                delivery = work.get(timeout=0.1)
            except queue_module.Empty:
                continue
            if stop.is_set():
                work.put(delivery)
                return
            if delivery.channel.is_open:  # else the broker redelivers it
                self._handle(delivery, handler, dead_letter)

    def _handle(
        self, delivery: _Delivery, handler: Callable[[bytes, int], None], dead_letter: Callable[[bytes], None] | None
    ) -> None:
        ok = True
        try:
            if delivery.dead:
                assert dead_letter is not None
                dead_letter(delivery.body)
            else:
                handler(delivery.body, delivery.attempt)
        except StoreUnavailableError:
            ok = self._hand_back(delivery)
        except Exception:
            ok = False
            log.exception("delivery %d of a message failed; returning it to the queue", delivery.attempt)
        try:
            delivery.connection.add_callback_threadsafe(functools.partial(_settle, delivery, ok))
        except CONNECTION_ERRORS:
            # The broker returns the message itself when the connection is gone.
            log.debug("connection gone before the ack; the message will be redelivered")

    def _give_back(self, work: queue_module.Queue[_Delivery]) -> None:
        """On the consuming thread: every delivery not started goes back uncounted."""
        while True:
            try:
                delivery = work.get_nowait()
            except queue_module.Empty:
                return
            if delivery.channel.is_open and self._hand_back(delivery):
                delivery.channel.basic_ack(delivery.delivery_tag)

    def _hand_back(self, delivery: _Delivery) -> bool:
        """Put a fresh copy of the message at the back of its queue (confirmed), so the
        delivery can be acked without the broker counting an attempt. False if the
        broker is unreachable: then the message is returned the only way left."""
        try:
            self._send(delivery.queue, [delivery.body], declaring=False)
        except (pika.exceptions.NackError, pika.exceptions.UnroutableError, *CONNECTION_ERRORS):
            return False
        return True

    def depth(self, queue: str) -> int:
        """Messages ready in ``queue`` (not those delivered and not yet acked); 0 if it
        does not exist yet. Never declares: a queue's arguments are its owner's."""
        return self.ready_and_consumers(queue)[0]

    def ping(self) -> None:
        """A round trip to the broker on this thread's publishing connection (a new one
        if it was lost); raises what connecting or the round trip raised."""
        try:
            connection, _ = self._publisher()
            connection.process_data_events(0)
        except CONNECTION_ERRORS:
            self._drop_publisher()
            raise

    def ready_and_consumers(self, queue: str) -> tuple[int, int]:
        """(ready messages, consumers) of ``queue``: what monitoring and the benchmark sample."""
        for attempt in (1, 2):
            try:
                _, channel = self._publisher()
                found = channel.queue_declare(queue, passive=True).method
                return int(found.message_count), int(found.consumer_count)
            except pika.exceptions.ChannelClosedByBroker as exc:
                self._drop_publisher()
                if exc.reply_code == 404:
                    return 0, 0
                raise
            except CONNECTION_ERRORS:
                self._drop_publisher()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def delete(self, queue: str) -> None:
        """Delete ``queue`` and its dead-letter queue (tests and benchmarks clean up)."""
        _, channel = self._publisher()
        channel.queue_delete(queue)
        channel.queue_delete(dead_letter_queue(queue))
        self._local.declared.discard(queue)

    def close(self) -> None:
        with self._publishers_lock:
            publishers, self._publishers = self._publishers, []
        for conn in publishers:
            _close_quietly(conn)
        self._local = threading.local()


def _settle(delivery: _Delivery, ok: bool) -> None:
    """Runs on the consuming thread (via ``add_callback_threadsafe``)."""
    if not delivery.channel.is_open:
        return
    if ok:
        delivery.channel.basic_ack(delivery.delivery_tag)
    else:
        # Requeue: the quorum queue counts the attempt and dead-letters past the limit.
        delivery.channel.basic_nack(delivery.delivery_tag, requeue=True)


def _quiet_pika() -> None:
    """pika logs every failed connection attempt at ERROR, with a traceback, and then
    raises; the transport reports the outage once (``FaultEpisodes``). Its own logs
    stay available at DEBUG."""
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logging.getLogger("pika").setLevel(logging.CRITICAL)


def _discard_all(work: queue_module.Queue[_Delivery]) -> None:
    while True:
        try:
            work.get_nowait()
        except queue_module.Empty:
            return


def _close_quietly(conn: BlockingConnection) -> None:
    try:
        if conn.is_open:
            conn.close()
    except Exception as exc:  # closing a broken connection can raise anything pika-side
        log.debug("closing a RabbitMQ connection: %s", exc)
