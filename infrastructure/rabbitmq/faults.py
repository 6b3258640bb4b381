"""Which RabbitMQ errors are infrastructure faults (see application.faults): the
connection or channel is gone, or the broker refused a message (a resource alarm)."""

from __future__ import annotations

import pika.exceptions  # type: ignore[import-untyped]

from infrastructure.rabbitmq.transport import CONNECTION_ERRORS


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, (*CONNECTION_ERRORS, pika.exceptions.NackError, pika.exceptions.UnroutableError))
