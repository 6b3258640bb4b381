"""Messaging: durable queues between the relay and the processors, and the relay's position.

Each port has one contract test suite (``tests/contract``) run against every adapter.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol


class MessageTransport(Protocol):
    """Durable queues between the relay and the processors.

    ``publish`` returns only once the messages are safely held (publisher confirms on
    RabbitMQ). ``consume`` calls the handler per message and acknowledges only after
    the handler returns; an exception re-queues the message, and a message that keeps
    failing goes to the dead-letter handler, if any, after ``delivery_limit`` attempts.
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

    def depth(self, queue: str) -> int: ...

    def close(self) -> None: ...


class PositionStore(Protocol):
    """Where a log follower (the relay) remembers how far it has published."""

    def get(self, name: str) -> int: ...

    def set(self, name: str, position: int) -> None: ...
