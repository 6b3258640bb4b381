"""Fixtures shared by the end-to-end suites."""

from __future__ import annotations

import os

import pytest

from tests.mongo_server import fresh_database


@pytest.fixture(params=["sqlite", "mongodb"])
def store_env(request: pytest.FixtureRequest) -> dict[str, str] | None:
    """The environment of CLI runs on each document store: None (this process's, the
    embedded SQLite store), or a new MongoDB database of its own, dropped after the test."""
    if request.param == "sqlite":
        return None
    uri, database = fresh_database(request)
    return {**os.environ, "BULK_DOCUMENT_STORE": "mongodb", "BULK_MONGODB_URI": uri, "BULK_MONGODB_DATABASE": database}
