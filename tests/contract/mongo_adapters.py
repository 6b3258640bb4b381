"""MongoDB adapter factories for the contract suites.

Every adapter a test builds shares that test's own database (a fresh name, dropped
when the test ends), so suites can share one server and several gates built by one
test see the same storage, as API replicas would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.mongo_server import fresh_database


def mongo_entities(request: pytest.FixtureRequest, tmp: Path) -> Any:
    from infrastructure.mongo.entities import MongoEntityStore

    return MongoEntityStore(*fresh_database(request))


def mongo_read_models(request: pytest.FixtureRequest, tmp: Path) -> Any:
    from infrastructure.mongo.read_models import MongoReadModelStore

    return MongoReadModelStore(*fresh_database(request))


def mongo_quota(request: pytest.FixtureRequest, tmp: Path) -> Any:
    from infrastructure.mongo.quota import MongoQuotaGate

    return MongoQuotaGate(*fresh_database(request))
