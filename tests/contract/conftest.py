from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from application.event_store import BulkActionLog
from tests.contract import adapters


def _built(table: dict[str, adapters.Factory], request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    adapter = table[request.param](request, tmp_path)
    yield adapter
    adapter.close()


@pytest.fixture(params=sorted(adapters.ENTITY_STORES))
def entity_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    yield from _built(adapters.ENTITY_STORES, request, tmp_path)


@pytest.fixture(params=sorted(adapters.ENTITY_STORES))
def entity_store_name(request: pytest.FixtureRequest) -> str:
    """The name of an entity store adapter, for tests that build it themselves."""
    name: str = request.param
    return name


@pytest.fixture(params=sorted(adapters.ENTITY_STORES))
def entity_store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Builds several stores on the same storage (as separate workers would)."""
    yield from adapters.several(adapters.ENTITY_STORES, request, tmp_path)


@pytest.fixture(params=sorted(adapters.READ_MODEL_STORES))
def read_models(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    yield from _built(adapters.READ_MODEL_STORES, request, tmp_path)


@pytest.fixture(params=sorted(adapters.QUOTA_GATES))
def quota_gate(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    yield from _built(adapters.QUOTA_GATES, request, tmp_path)


@pytest.fixture(params=sorted(adapters.QUOTA_GATES))
def quota_gate_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Builds several gates on the same storage (as separate API processes would)."""
    yield from adapters.several(adapters.QUOTA_GATES, request, tmp_path)


@pytest.fixture(params=sorted(adapters.POSITION_STORES))
def position_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    yield from _built(adapters.POSITION_STORES, request, tmp_path)


@pytest.fixture(params=sorted(adapters.TRANSPORTS))
def transport(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    yield from _built(adapters.TRANSPORTS, request, tmp_path)


@pytest.fixture(params=sorted(adapters.EVENT_STORE_ENVS))
def event_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BulkActionLog]:
    env = adapters.EVENT_STORE_ENVS[request.param](request, tmp_path)
    app = BulkActionLog(env=env)
    yield app
    app.close()
