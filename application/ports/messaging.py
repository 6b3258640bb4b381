"""Messaging: durable queues between the relay and the processors, and the relay's position.

Each port has one contract test suite (``tests/contract``) run against every adapter.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Literal, Protocol


class MessageTransport(Protocol):
    """Durable queues between the relay and the processors.

    ``publish`` returns only once the messages are safely held (publisher confirms on
    RabbitMQ). ``consume`` calls the handler per message and acknowledges only after
    the handler returns; an exception re-queues the message, and a message that keeps
    failing goes to the dead-letter handler, if any, after ``delivery_limit`` attempts.

    A handler (or dead-letter handler) that raises ``StoreUnavailableError`` gives the
    message back *without counting an attempt*: an infrastructure fault says nothing
    about the message, so it must never bring it closer to the dead-letter queue.
    """

    def publish(self, queue: str, bodies: Sequence[bytes]) -> None: ...

    def consume(
        self,
        queue: str,
        handler: Callable[[bytes, int], None],
        stop: threading.Event,
        *,
        dead_letter: Callable[[bytes], None] | None = None,
    ) -> None: ...

    def depth(self, queue: str) -> int:
        """Messages waiting in ``queue`` (0 for a queue not made yet): the queue gauge."""
        ...

    def ping(self) -> None:
        """Raise if the broker cannot be reached now (readiness checks)."""
        ...

    def close(self) -> None: ...


class ChunkTrial(Protocol):
    """Processes one chunk alone, where a crash cannot take the caller down with it (a
    child process), to tell a chunk that crashes its worker from one whose deliveries
    were lost to infrastructure faults before it is failed as poison."""

    def try_alone(self, action_id: str, chunk_no: int) -> Literal["processed", "unavailable", "crashed"]:
        """``processed``: its outcomes are stored (or were already); ``unavailable``: an
        infrastructure fault stopped it, try again later; ``crashed``: it killed the
        process or failed on its own."""
        ...


class PositionStore(Protocol):
    """Where a log follower (the relay) remembers how far it has published."""

    def get(self, name: str) -> int: ...

    def set(self, name: str, position: int) -> None: ...
