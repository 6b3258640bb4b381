"""In-process transport: thread-safe queues with redelivery and a dead-letter hook.

Messages live only as long as the process; that is enough for the embedded default
because ``resume`` re-dispatches every chunk that has no outcomes yet.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence

from application.faults import StoreUnavailableError

log = logging.getLogger(__name__)


class InProcessTransport:
    def __init__(self, delivery_limit: int = 5) -> None:
        self.delivery_limit = delivery_limit
        self._queues: dict[str, queue.Queue[tuple[bytes, int]]] = {}
        self._lock = threading.Lock()

    def _queue(self, name: str) -> queue.Queue[tuple[bytes, int]]:
        with self._lock:
            found = self._queues.get(name)
            if found is None:
                found = self._queues[name] = queue.Queue()
            return found

    def publish(self, queue_name: str, bodies: Sequence[bytes]) -> None:
        target = self._queue(queue_name)
        for body in bodies:
            target.put((body, 1))

    def consume(
        self,
        queue_name: str,
        handler: Callable[[bytes, int], None],
        stop: threading.Event,
        *,
        dead_letter: Callable[[bytes], None] | None = None,
    ) -> None:
        source = self._queue(queue_name)
        while not stop.is_set():
            try:
                body, attempt = source.get(timeout=0.05)
            except queue.Empty:
                continue
            try:
                handler(body, attempt)
            except StoreUnavailableError:
                source.put((body, attempt))  # an infrastructure fault: not an attempt
            except Exception:
                log.exception("delivery %d of a message on %s failed", attempt, queue_name)
                if attempt < self.delivery_limit:
                    source.put((body, attempt + 1))
                elif dead_letter is not None:
                    _dead_letter(dead_letter, body, stop)
            finally:
                source.task_done()

    def depth(self, queue_name: str) -> int:
        return self._queue(queue_name).qsize()

    def ping(self) -> None:
        """Always reachable: the queues are in this process."""

    def close(self) -> None:
        with self._lock:
            self._queues.clear()


def _dead_letter(dead_letter: Callable[[bytes], None], body: bytes, stop: threading.Event) -> None:
    """Hand ``body`` to the dead-letter handler until it takes it (it waits out an
    infrastructure fault itself, then raises to let go); on stop it is left to
    ``resume``, like everything else in this process's queues."""
    while not stop.is_set():
        try:
            dead_letter(body)
        except StoreUnavailableError:
            continue
        return
