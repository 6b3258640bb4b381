"""The outbox relay: follows the event store's notification log and publishes chunk
work to the transport, then remembers how far it got.

Events are never "saved then published" in one request: a crash between publish and
``positions.set`` republishes at most one page, which processors absorb (chunk
outcomes have deterministic versions).
"""

from __future__ import annotations

import threading

import orjson

from application.event_store import BulkActionLog, position_after
from application.faults import FaultPolicy
from application.ports.messaging import MessageTransport, PositionStore

CHUNKS_QUEUE = "bulk.chunks"
RELAY_NAME = "relay"  # the relay's position is stored under this name


def chunk_message(action_id: str, chunk_no: int) -> bytes:
    return orjson.dumps({"action_id": action_id, "chunk_no": chunk_no})


class Relay:
    def __init__(
        self,
        events: BulkActionLog,
        transport: MessageTransport,
        positions: PositionStore,
        faults: FaultPolicy,
        name: str = RELAY_NAME,
    ) -> None:
        self.events = events
        self.transport = transport
        self.positions = positions
        self.faults = faults
        self.name = name

    def run_once(self, page: int = 500) -> int:
        position = self.positions.get(self.name)
        head = self.events.head()
        if head <= position:
            return 0
        queued = self.events.queued_chunks(position, page, until=head)
        bodies = [chunk_message(str(action_id), chunk_no) for _, action_id, chunk_no in queued]
        if bodies:
            self.transport.publish(CHUNKS_QUEUE, bodies)
        self.positions.set(self.name, position_after(queued, page, head))
        return len(bodies)

    def run(self, stop: threading.Event, poll_seconds: float = 0.05) -> None:
        self.faults.run_steps(self.name, self.run_once, stop, poll_seconds)
