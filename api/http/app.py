"""The app factory: ``create_app(services, config, runtime)``.

With a runtime (``bulkactions serve`` on the embedded default: relay, workers and
projector in a child process, see ``api.runtime_process``) the app starts and stops
it with itself, and the runtime resumes what a previous run left unfinished. Without
one (the production stack, where those run as their own processes) the app itself
resumes storing any input a previous API process left half-stored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi

from api.http import problems
from api.http.deps import ApiState, reject_unknown_query
from api.http.ratelimit_headers import RateLimitHeaders
from api.http.request_metrics import RequestMetrics
from api.http.routes import bulk_actions, entities, events, health, metrics, progress, results, retries, ui, webhooks
from api.http.schemas import BulkActionCreate
from api.http.spool import SpoolFolder
from api.input_storing import InputStorer, InputStoring, resume_unfinished
from infrastructure.bootstrap import ApplicationServices
from infrastructure.settings import Settings

log = logging.getLogger(__name__)


class Runtime(InputStoring, Protocol):
    """Relay, workers and projector started with the app; it also stores the inputs
    the app accepts (off the API's process)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def ready(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """The settings the API itself reads: where request bodies are spooled (the data
    dir's ``spool/``), and the largest body it takes."""

    data_dir: Path
    max_upload_bytes: int
    metrics: bool = False  # GET /metrics and the request metrics

    @classmethod
    def of(cls, settings: Settings) -> ApiConfig:
        return cls(settings.data_dir, settings.max_upload_bytes, settings.metrics)


def create_app(
    services: ApplicationServices, config: ApiConfig, runtime: Runtime | None = None, *, resume: bool = True
) -> FastAPI:
    storer = runtime if runtime is not None else InputStorer(services)
    spool = SpoolFolder(config.data_dir)
    state = ApiState(services, storer, spool, config.max_upload_bytes)
    resumed = threading.Event()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        resuming: threading.Thread | None = None
        if runtime is not None:
            runtime.start()  # and the runtime resumes unfinished actions
        elif resume:
            started = datetime.now(UTC).isoformat()
            resuming = threading.Thread(
                target=_resume, args=(services, config.data_dir, started, resumed), name="resume", daemon=True
            )
            resuming.start()
        else:
            resumed.set()
        try:
            yield
        finally:
            # The resume thread uses the stores: let it finish before the composition
            # root closes them (as the storer's close waits for its inputs).
            if resuming is not None:
                resuming.join()
            state.storer.close()
            if runtime is not None:
                runtime.stop()
            spool.close()

    app = FastAPI(
        title="Bulk Action Platform",
        version="1.0.0",
        summary="Bulk insert / update / upsert of CRM records, with per-record results and an audit trail.",
        lifespan=lifespan,
    )
    app.state.api = state
    app.state.started = runtime.ready if runtime is not None else resumed.is_set
    problems.install(app, services.faults)
    for module in (bulk_actions, retries, progress, results, events, entities, health, ui, webhooks):
        app.include_router(module.router, dependencies=[Depends(reject_unknown_query)])
    app.add_middleware(RateLimitHeaders)
    if config.metrics:
        _install_metrics(app, services)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _install_metrics(app: FastAPI, services: ApplicationServices) -> None:
    """``GET /metrics`` (this process's metrics, with its children's in multiprocess
    mode, and the lags and statuses read at scrape time) and the request metrics."""
    from infrastructure.prometheus.metrics import Exposition, StateCollector

    app.state.metrics = Exposition(StateCollector(services.monitoring))
    app.include_router(metrics.router, dependencies=[Depends(reject_unknown_query)])
    app.add_middleware(RequestMetrics)


def _resume(services: ApplicationServices, data_dir: Path, created_before: str, done: threading.Event) -> None:
    try:
        storer = InputStorer(services)
        try:
            count = resume_unfinished(
                services, storer, redispatch=False, created_before=created_before, data_dir=data_dir, swept=done.set
            )
        finally:
            storer.close()
        if count:
            log.warning("resumed %d unfinished action(s)", count)
    except Exception:
        log.exception("resuming unfinished actions failed")
    finally:
        done.set()


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated schema, plus the JSON body of POST /v1/bulk-actions (read by hand
    there, to stream uploads and cap sizes) among the components."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
    body = BulkActionCreate.model_json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(body.pop("$defs", {}))
    components["BulkActionCreate"] = body
    components["ProblemBody"] = problems.ProblemBody.model_json_schema(ref_template="#/components/schemas/{model}")
    app.openapi_schema = schema
    return schema
