"""``bulkactions`` with one injected fault, for the production fault tests.

    python -m tests.integration.faulty_processes FAULT bulkactions-args...

The fault is patched into the real code of this process only, then the real CLI
runs. Faults that must happen once across restarts (a relay that dies once) use a
marker file named by ``BULK_FAULT_MARKER``: the first process creates it and dies,
the restarted one finds it and runs normally.

FAULT is one of:
- ``crash-on-chunk:N``: the worker process dies (``os._exit``) whenever it starts
  chunk N: a poison chunk that crashes every worker that takes it (and the child a
  worker tries a dead-lettered chunk in: it runs with the same fault);
- ``pause-before-outcomes``: after a chunk's entities are written and before its
  outcome events are stored, write ``BULK_FAULT_MARKER`` and pause 30 s, so a test
  can SIGKILL the worker in the middle of a chunk;
- ``deliver-twice``: every chunk message is processed, then refused once, so the
  broker delivers it again (attempt 2) and it is processed a second time;
- ``relay-exit-before-publish``: the relay dies once after reading chunks from the
  event store and before publishing them;
- ``relay-exit-after-publish``: the relay dies once after the broker confirmed a
  page and before it stored its position (the page is published again).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any
from uuid import UUID


def _first_time() -> bool:
    """True once per marker file (across processes)."""
    marker = Path(os.environ["BULK_FAULT_MARKER"])
    try:
        marker.touch(exist_ok=False)
    except FileExistsError:
        return False
    return True


def _crash_on_chunk(poison: int) -> None:
    from api.chunk_trial import SubprocessChunkTrial
    from application.chunk_processing import ChunkProcessor

    SubprocessChunkTrial.program = [
        sys.executable,
        "-m",
        "tests.integration.faulty_processes",
        f"crash-on-chunk:{poison}",
    ]

    original = ChunkProcessor.process

    def process(self: ChunkProcessor, action_id: UUID, chunk_no: int) -> str:
        if chunk_no == poison:
            os._exit(17)
        return original(self, action_id, chunk_no)

    ChunkProcessor.process = process  # type: ignore[method-assign]


def _pause_before_outcomes() -> None:
    from application.event_store import BulkActionLog

    original = BulkActionLog.record_outcomes

    def record_outcomes(self: BulkActionLog, events: Any) -> bool:
        if _first_time():
            time.sleep(30)  # the test kills this process here
        return original(self, events)

    BulkActionLog.record_outcomes = record_outcomes  # type: ignore[method-assign]


def _deliver_twice() -> None:
    from application.worker import ChunkWorker

    original = ChunkWorker.handle

    def handle(self: ChunkWorker, body: bytes, attempt: int) -> None:
        original(self, body, attempt)
        if attempt == 1:
            raise RuntimeError("fault injection: refuse the first delivery after processing it")

    ChunkWorker.handle = handle  # type: ignore[method-assign]


def _relay_exit(after_publish: bool) -> None:
    from infrastructure.postgres.positions import PostgresPositionStore
    from infrastructure.rabbitmq.transport import RabbitMQTransport

    publish, set_position = RabbitMQTransport.publish, PostgresPositionStore.set
    published = False

    def exiting_publish(self: RabbitMQTransport, queue: str, bodies: Any) -> None:
        nonlocal published
        if bodies and not after_publish and _first_time():
            os._exit(18)
        publish(self, queue, bodies)
        published = published or bool(bodies)

    def exiting_set(self: PostgresPositionStore, name: str, position: int) -> None:
        if published and after_publish and _first_time():
            os._exit(19)
        set_position(self, name, position)

    RabbitMQTransport.publish = exiting_publish  # type: ignore[method-assign]
    PostgresPositionStore.set = exiting_set  # type: ignore[method-assign]


def main() -> None:
    fault, args = sys.argv[1], sys.argv[2:]
    if fault.startswith("crash-on-chunk:"):
        _crash_on_chunk(int(fault.split(":", 1)[1]))
    elif fault == "pause-before-outcomes":
        _pause_before_outcomes()
    elif fault == "deliver-twice":
        _deliver_twice()
    elif fault in ("relay-exit-before-publish", "relay-exit-after-publish"):
        _relay_exit(after_publish=fault.endswith("after-publish"))
    else:
        raise SystemExit(f"unknown fault {fault!r}")
    from api.cli import main as bulkactions

    bulkactions(args)


if __name__ == "__main__":
    main()
