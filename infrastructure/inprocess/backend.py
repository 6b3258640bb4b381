"""The embedded transport: in-process queues (the relay, workers and projector run in
the process that stores the input)."""

from __future__ import annotations

from application.faults import FaultClassifier, FaultPolicy
from application.ports.messaging import MessageTransport
from infrastructure.inprocess.transport import InProcessTransport
from infrastructure.settings import Settings


def transport(settings: Settings, faults: FaultPolicy) -> MessageTransport:
    return InProcessTransport(settings.delivery_limit)


def _never(exc: BaseException) -> bool:
    return False


is_transient: FaultClassifier = _never


def queues(queue: str) -> tuple[str, ...]:
    """The queues behind ``queue`` that monitoring samples (no dead-letter queue here)."""
    return (queue,)
