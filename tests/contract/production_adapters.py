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
    POSTGRES_SERVER,
    RABBITMQ_SERVER,
    postgres_error,
    rabbitmq_error,
    rabbitmqctl,
)


def _fresh_schema(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(schema, DSN selecting it) for this test; the schema is dropped afterwards."""
    import uuid

    import psycopg

    problem = postgres_error()
    if problem:
        require_server("PostgreSQL", problem)
    schema = "bulk_c" + uuid.uuid4().hex[:10]
    with psycopg.connect(POSTGRES_SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')

    def drop() -> None:
        with psycopg.connect(POSTGRES_SERVER, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    request.addfinalizer(drop)
    return schema, f"{POSTGRES_SERVER}?options=-csearch_path%3D{schema}"


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
    import uuid
    from urllib.parse import quote

    from infrastructure.rabbitmq.transport import RabbitMQTransport

    problem = rabbitmq_error()
    if problem:
        require_server("RabbitMQ", problem)
    vhost = "bulk_c" + uuid.uuid4().hex[:10]
    rabbitmqctl("add_vhost", vhost)
    request.addfinalizer(lambda: rabbitmqctl("delete_vhost", vhost))
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    return RabbitMQTransport(f"{RABBITMQ_SERVER}/{quote(vhost, safe='')}", delivery_limit=3, prefetch=4)
