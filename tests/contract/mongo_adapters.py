"""MongoDB adapter factories for the contract suites.

Every adapter a test builds shares that test's own database (a fresh name, dropped
when the test ends), so suites can share one server and several gates built by one
test see the same storage, as API replicas would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.mongo_server import fresh_database, transactions_missing


def mongo_entities(request: pytest.FixtureRequest, tmp: Path) -> Any:
    from infrastructure.mongo.entities import MongoEntityStore

    return MongoEntityStore(*fresh_database(request))


def mongo_read_models_claimed(request: pytest.FixtureRequest, tmp: Path) -> Any:
    """The standalone server's path: each batch under a claim (projection_claims)."""
    from infrastructure.mongo.read_models import MongoReadModelStore

    return MongoReadModelStore(*fresh_database(request), transactions=False)


def mongo_read_models_in_transactions(request: pytest.FixtureRequest, tmp: Path) -> Any:
    """The replica set's path: each batch and its position in one transaction. Reported
    as not run (a skip with the reason) where the server has no transactions."""
    from infrastructure.mongo.read_models import MongoReadModelStore

    why = transactions_missing()
    if why is not None:
        pytest.skip(f"the transaction path of the MongoDB read models did not run: {why}")
    return MongoReadModelStore(*fresh_database(request), transactions=True)


def mongo_quota(request: pytest.FixtureRequest, tmp: Path) -> Any:
    from infrastructure.mongo.quota import MongoQuotaGate

    return MongoQuotaGate(*fresh_database(request))
