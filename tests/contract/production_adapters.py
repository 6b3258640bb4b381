"""Contract-suite factories of the PostgreSQL and RabbitMQ adapters (real servers).

Each test gets its own PostgreSQL schema and RabbitMQ virtual host, dropped after
it, so suites can share one server of each. A missing server fails the test with a
clear message (``require_server``), never a silent skip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_server
from tests.integration.production_stack import (
    delete_vhost,
    drop_schema,
    new_schema,
    new_vhost,
    postgres_error,
    rabbitmq_error,
    vhost_url,
)


def _fresh_schema(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(schema, DSN selecting it) for this test; the schema is dropped afterwards."""
    problem = postgres_error()
    if problem:
        require_server("PostgreSQL", problem)
    schema, dsn = new_schema("bulk_c")
    request.addfinalizer(lambda: drop_schema(schema))
    return schema, dsn


def postgres_event_store_env(request: pytest.FixtureRequest, tmp: Path) -> dict[str, str]:
    from infrastructure.bootstrap import event_store_env
    from infrastructure.settings import Settings

    _, dsn = _fresh_schema(request)
    return event_store_env(Settings(data_dir=tmp, event_store="postgres", postgres_dsn=dsn))


def postgres_positions(request: pytest.FixtureRequest, tmp: Path) -> Any:
    from infrastructure.postgres.positions import PostgresPositionStore

    _, dsn = _fresh_schema(request)
    return PostgresPositionStore(dsn)


def rabbitmq_transport(request: pytest.FixtureRequest, tmp: Path) -> Any:
    from infrastructure.rabbitmq.transport import RabbitMQTransport

    problem = rabbitmq_error()
    if problem:
        require_server("RabbitMQ", problem)
    vhost = new_vhost("bulk_c")
    request.addfinalizer(lambda: delete_vhost(vhost))
    return RabbitMQTransport(vhost_url(vhost), delivery_limit=3, prefetch=4)
