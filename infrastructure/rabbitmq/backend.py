"""The production transport: RabbitMQ (durable quorum queues, confirms, manual acks)."""

from __future__ import annotations

from application.faults import FaultPolicy
from application.ports.messaging import MessageTransport
from infrastructure.rabbitmq.faults import is_transient
from infrastructure.settings import ConfigurationError, Settings

__all__ = ["is_transient", "queues", "transport"]


def transport(settings: Settings, faults: FaultPolicy) -> MessageTransport:
    if not settings.rabbitmq_url:
        raise ConfigurationError("BULK_TRANSPORT=rabbitmq needs BULK_RABBITMQ_URL")
    from infrastructure.rabbitmq.transport import RabbitMQTransport

    return RabbitMQTransport(
        settings.rabbitmq_url, settings.delivery_limit, settings.rabbitmq_prefetch, episodes=faults.episodes
    )


def queues(queue: str) -> tuple[str, ...]:
    """The queues behind ``queue`` that monitoring samples: it and its dead-letter queue."""
    from infrastructure.rabbitmq.transport import dead_letter_queue

    return (queue, dead_letter_queue(queue))
