"""RabbitMQ adapter of the message transport (pika, quorum queues)."""
