"""/healthz answers while the process lives; /readyz only once the startup work (the
runtime resuming a previous run's actions and sweeping the spool) is done."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from api.http.app import ApiConfig, create_app
from application.submission import PendingInput
from infrastructure.bootstrap import bootstrap
from infrastructure.settings import Settings


class StartingRuntime:
    """A runtime whose startup the test ends when it chooses."""

    def __init__(self) -> None:
        self.started = False

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def ready(self) -> bool:
        return self.started

    def store(self, pending: PendingInput) -> None: ...

    def close(self) -> None: ...


def test_ready_only_once_the_runtime_has_started(tmp_path: Path) -> None:
    container = bootstrap(Settings(data_dir=tmp_path))
    runtime = StartingRuntime()
    try:
        with TestClient(create_app(container.services, ApiConfig.of(container.settings), runtime)) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            waiting = client.get("/readyz")
            assert (waiting.status_code, waiting.json()["missing"]) == (503, ["startup"])
            runtime.started = True
            assert (client.get("/readyz").status_code, client.get("/healthz").status_code) == (200, 200)
    finally:
        container.close()
