"""Glue between the chunk queue and the chunk processor."""

from __future__ import annotations

import logging
import threading
from uuid import UUID

import orjson

from application.chunk_processing import ChunkProcessor
from application.ports.messaging import MessageTransport
from application.relay import CHUNKS_QUEUE

log = logging.getLogger(__name__)


class ChunkWorker:
    """Processes chunk messages. An infrastructure fault (a store down, a full disk) is
    waited out with the message in hand, retried with backoff: a redelivery would count
    towards the delivery limit, and past it the chunk's records would be failed."""

    def __init__(self, processor: ChunkProcessor, transport: MessageTransport) -> None:
        self.processor = processor
        self.transport = transport
        self.faults = processor.faults
        self.stop = threading.Event()

    def handle(self, body: bytes, attempt: int) -> None:
        message = orjson.loads(body)
        action_id, chunk_no = UUID(message["action_id"]), int(message["chunk_no"])
        self.faults.retrying("processing chunks", lambda: self.processor.process(action_id, chunk_no), self.stop)

    def dead_letter(self, body: bytes) -> None:
        message = orjson.loads(body)
        action_id, chunk_no = UUID(message["action_id"]), int(message["chunk_no"])
        log.error("chunk %s of action %s dead-lettered", chunk_no, action_id)
        reason = "chunk dead-lettered: it failed on every delivery"
        self.faults.retrying(
            "failing a dead-lettered chunk", lambda: self.processor.fail_chunk(action_id, chunk_no, reason), self.stop
        )

    def run(self, stop: threading.Event) -> None:
        self.stop = stop
        self.transport.consume(CHUNKS_QUEUE, self.handle, stop, dead_letter=self.dead_letter)
