"""Fixtures shared by the integration suites."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from infrastructure.bootstrap import Container, bootstrap
from infrastructure.settings import Settings
from tests.mongo_server import fresh_database


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    """The embedded default's adapters on a fresh data dir (SQLite files, in-process)."""
    built = bootstrap(Settings(data_dir=tmp_path / "data"))
    yield built
    built.close()


@pytest.fixture
def database(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(URI, database name) of an empty MongoDB database, dropped after the test."""
    return fresh_database(request)
