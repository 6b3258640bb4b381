"""Glue between the chunk queue and the chunk processor."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar
from uuid import UUID

import orjson

from application.chunk_processing import ChunkProcessor
from application.faults import StoreUnavailableError
from application.log_context import working_on
from application.ports.messaging import ChunkTrial, MessageTransport
from application.relay import CHUNKS_QUEUE

log = logging.getLogger(__name__)

T = TypeVar("T")
PROCESSING = "processing chunks"
DEAD_LETTERS = "dead-lettered chunks"


class ChunkWorker:
    """Processes chunk messages.

    An infrastructure fault (a store down, a full disk) is never held against a
    message: the worker notes it (one log line per episode), waits its backoff, and
    gives the message back to its queue without counting a delivery
    (``StoreUnavailableError``, see ``MessageTransport``). So a message is never held
    for long during an outage (a broker's consumer timeout would count it), and an
    outage never brings a chunk closer to the dead-letter queue.

    A dead-lettered chunk is only *suspected* of being poison: the broker also counts
    a delivery that a dropped connection returned (RabbitMQ before 4.3 does). With a
    ``trial``, it is processed once more, alone in a child process: if that works its
    records get their real outcomes; only if the chunk crashes the child (or fails on
    its own) are its records failed with a ``system_error``.
    """

    def __init__(self, processor: ChunkProcessor, transport: MessageTransport, trial: ChunkTrial | None = None) -> None:
        self.processor = processor
        self.transport = transport
        self.trial = trial
        self.faults = processor.faults
        self.backoff = self.faults.backoff()
        self.stop = threading.Event()

    def _attempt(self, where: str, call: Callable[[], T]) -> T:
        return self.faults.attempt(where, call, self.stop, self.backoff)

    def handle(self, body: bytes, attempt: int) -> None:
        action_id, chunk_no = _chunk_of(body)
        with working_on(action_id, chunk_no):
            done = self._attempt(PROCESSING, lambda: self.processor.process(action_id, chunk_no))
            log.info("chunk %d of action %s: %s (delivery %d)", chunk_no, action_id, done, attempt)

    def dead_letter(self, body: bytes) -> None:
        action_id, chunk_no = _chunk_of(body)
        with working_on(action_id, chunk_no):
            self._dead_letter(action_id, chunk_no)

    def _dead_letter(self, action_id: UUID, chunk_no: int) -> None:
        if self._attempt(DEAD_LETTERS, lambda: self.processor.is_done(action_id, chunk_no)):
            log.warning("chunk %s of action %s was dead-lettered but is done: nothing to fail", chunk_no, action_id)
            return
        if self.trial is not None:
            verdict = self.trial.try_alone(str(action_id), chunk_no)
            if verdict == "unavailable":
                self._attempt(DEAD_LETTERS, _unavailable)  # waits its backoff, gives the message back
            if verdict == "processed":
                log.warning(
                    "chunk %s of action %s was dead-lettered, then processed alone without fault: its deliveries"
                    " were lost to infrastructure faults, not caused by its records",
                    chunk_no,
                    action_id,
                )
                return
        log.error("chunk %s of action %s dead-lettered: it crashed or failed on every delivery", chunk_no, action_id)
        reason = "chunk dead-lettered: it failed on every delivery"
        self._attempt(DEAD_LETTERS, lambda: self.processor.fail_chunk(action_id, chunk_no, reason))

    def run(self, stop: threading.Event) -> None:
        self.stop = stop
        self.transport.consume(CHUNKS_QUEUE, self.handle, stop, dead_letter=self.dead_letter)


def _chunk_of(body: bytes) -> tuple[UUID, int]:
    message = orjson.loads(body)
    return UUID(message["action_id"]), int(message["chunk_no"])


def _unavailable() -> None:
    raise StoreUnavailableError("a store was unavailable to the chunk's trial")
