"""Glue between the chunk queue and the chunk processor."""

from __future__ import annotations

import logging
import threading
from uuid import UUID

import orjson

from application.chunk_processing import ChunkProcessor
from application.ports import MessageTransport
from application.relay import CHUNKS_QUEUE

log = logging.getLogger(__name__)


class ChunkWorker:
    def __init__(self, processor: ChunkProcessor, transport: MessageTransport) -> None:
        self.processor = processor
        self.transport = transport

    def handle(self, body: bytes, attempt: int) -> None:
        message = orjson.loads(body)
        self.processor.process(UUID(message["action_id"]), int(message["chunk_no"]))

    def dead_letter(self, body: bytes) -> None:
        message = orjson.loads(body)
        log.error("chunk %s of action %s dead-lettered", message["chunk_no"], message["action_id"])
        self.processor.fail_chunk(
            UUID(message["action_id"]), int(message["chunk_no"]), "chunk dead-lettered: it failed on every delivery"
        )

    def run(self, stop: threading.Event) -> None:
        self.transport.consume(CHUNKS_QUEUE, self.handle, stop, dead_letter=self.dead_letter)
