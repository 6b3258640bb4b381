"""Factories of every adapter, by port, for the contract suites.

Each suite is parametrized over the names in these tables; an adapter joins a
suite by adding one entry here. Factories take pytest's ``request`` and a fresh
temp dir, and return the adapter (the suite closes it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

Factory = Callable[[pytest.FixtureRequest, Path], Any]


def several(table: dict[str, Factory], request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """Fixture body: a builder of several adapters on the same storage (as separate
    processes would have), all closed at the end of the test."""
    made: list[Any] = []

    def build() -> Any:
        adapter = table[request.param](request, tmp_path)
        made.append(adapter)
        return adapter

    yield build
    for adapter in made:
        adapter.close()


def _sqlite_entities(request: pytest.FixtureRequest, tmp: Path) -> Any:
    from infrastructure.sqlite.entities import SQLiteEntityStore

    return SQLiteEntityStore(tmp / "entities.db")


def _sqlite_read_models(request: pytest.FixtureRequest, tmp: Path) -> Any:
    from infrastructure.sqlite.read_models import SQLiteReadModelStore

    return SQLiteReadModelStore(tmp / "readmodels.db")


def _sqlite_quota(request: pytest.FixtureRequest, tmp: Path) -> Any:
    from infrastructure.sqlite.quota import SQLiteQuotaGate

    return SQLiteQuotaGate(tmp / "quota.db")


def _sqlite_positions(request: pytest.FixtureRequest, tmp: Path) -> Any:
    from infrastructure.sqlite.positions import SQLitePositionStore

    return SQLitePositionStore(tmp / "positions.db")


def _inprocess_transport(request: pytest.FixtureRequest, tmp: Path) -> Any:
    from infrastructure.inprocess.transport import InProcessTransport

    return InProcessTransport(delivery_limit=3)


def _sqlite_event_store_env(request: pytest.FixtureRequest, tmp: Path) -> dict[str, str]:
    from infrastructure.bootstrap import event_store_env
    from infrastructure.settings import Settings

    return event_store_env(Settings(data_dir=tmp))


ENTITY_STORES: dict[str, Factory] = {"sqlite": _sqlite_entities}
READ_MODEL_STORES: dict[str, Factory] = {"sqlite": _sqlite_read_models}
QUOTA_GATES: dict[str, Factory] = {"sqlite": _sqlite_quota}
POSITION_STORES: dict[str, Factory] = {"sqlite": _sqlite_positions}
TRANSPORTS: dict[str, Factory] = {"inprocess": _inprocess_transport}
# Event stores are the eventsourcing application over each persistence: env factories.
EVENT_STORE_ENVS: dict[str, Factory] = {"sqlite": _sqlite_event_store_env}

# PostgreSQL and RabbitMQ adapters (real servers; see production_adapters).
from tests.contract import production_adapters  # noqa: E402

EVENT_STORE_ENVS["postgres"] = production_adapters.postgres_event_store_env
POSITION_STORES["postgres"] = production_adapters.postgres_positions
TRANSPORTS["rabbitmq"] = production_adapters.rabbitmq_transport

# MongoDB adapters (the test session's server; see tests/mongo_server.py).
from tests.contract import mongo_adapters  # noqa: E402

ENTITY_STORES["mongodb"] = mongo_adapters.mongo_entities
READ_MODEL_STORES["mongodb-claims"] = mongo_adapters.mongo_read_models_claimed
READ_MODEL_STORES["mongodb-transactions"] = mongo_adapters.mongo_read_models_in_transactions
QUOTA_GATES["mongodb"] = mongo_adapters.mongo_quota

# Accounts and rate limits (the HTTP API's ports).


def _sqlite_accounts(request: pytest.FixtureRequest, tmp: Path) -> Any:
    from infrastructure.sqlite.accounts import SQLiteAccountStore

    return SQLiteAccountStore(tmp / "accounts.db")


def _sqlite_rate_limiter(request: pytest.FixtureRequest, tmp: Path) -> Any:
    from infrastructure.sqlite.rate_limits import SQLiteRateLimiter

    return SQLiteRateLimiter(tmp / "ratelimits.db")


def _mongo_accounts(request: pytest.FixtureRequest, tmp: Path) -> Any:
    from infrastructure.mongo.accounts import MongoAccountStore
    from tests.mongo_server import fresh_database

    return MongoAccountStore(*fresh_database(request))


def _mongo_rate_limiter(request: pytest.FixtureRequest, tmp: Path) -> Any:
    from infrastructure.mongo.rate_limits import MongoRateLimiter
    from tests.mongo_server import fresh_database

    return MongoRateLimiter(*fresh_database(request))


ACCOUNT_STORES: dict[str, Factory] = {"sqlite": _sqlite_accounts, "mongodb": _mongo_accounts}
RATE_LIMITERS: dict[str, Factory] = {"sqlite": _sqlite_rate_limiter, "mongodb": _mongo_rate_limiter}


def _sqlite_webhook_deliveries(request: pytest.FixtureRequest, tmp: Path) -> Any:
    from infrastructure.sqlite.webhooks import SQLiteWebhookDeliveries

    return SQLiteWebhookDeliveries(tmp / "webhooks.db")


def _mongo_webhook_deliveries(request: pytest.FixtureRequest, tmp: Path) -> Any:
    from infrastructure.mongo.webhooks import MongoWebhookDeliveries
    from tests.mongo_server import fresh_database

    return MongoWebhookDeliveries(*fresh_database(request))


# The production stack keeps its documents (read models, accounts) on MongoDB, so its
# webhook deliveries are there too: no PostgreSQL adapter.
WEBHOOK_DELIVERIES: dict[str, Factory] = {"sqlite": _sqlite_webhook_deliveries, "mongodb": _mongo_webhook_deliveries}
