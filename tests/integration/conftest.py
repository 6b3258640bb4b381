"""Fixtures shared by the integration suites."""

from __future__ import annotations

import pytest

from tests.mongo_server import fresh_database


@pytest.fixture
def database(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(URI, database name) of an empty MongoDB database, dropped after the test."""
    return fresh_database(request)
