"""The app factory: ``create_app(container, runtime)``.

With a runtime (``bulkactions serve`` on the embedded default: relay, workers and
projector in a child process, see ``api.runtime_process``) the app starts and stops
it with itself, and the runtime resumes what a previous run left unfinished. Without
one (the production stack, where those run as their own processes) the app itself
resumes queueing any input a previous API process left half-queued.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi

from api.http import problems
from api.http.deps import Services, reject_unknown_query
from api.http.intake import InputQueuer, Queuer, resume_unfinished
from api.http.ratelimit_headers import RateLimitHeaders
from api.http.routes import bulk_actions, events, results
from api.http.schemas import BulkActionCreate
from api.http.spool import SpoolFolder
from application.accounts import Accounts
from infrastructure.bootstrap import Container

log = logging.getLogger(__name__)


class Runtime(Queuer, Protocol):
    """Relay, workers and projector started with the app; it also queues the inputs
    the app accepts (off the API's process)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


def create_app(container: Container, runtime: Runtime | None = None, *, resume: bool = True) -> FastAPI:
    queuer = runtime if runtime is not None else InputQueuer(container)
    spool = SpoolFolder(container.settings.data_dir)
    services = Services(container, Accounts(container.accounts, container.clock), queuer, spool)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        resuming: threading.Thread | None = None
        if runtime is not None:
            runtime.start()  # and the runtime resumes unfinished actions
        elif resume:
            started = datetime.now(UTC).isoformat()
            resuming = threading.Thread(target=_resume, args=(services, started), name="resume", daemon=True)
            resuming.start()
        try:
            yield
        finally:
            # The resume thread uses the container's stores: let it finish before the
            # composition root closes them (as the queuer's close waits for its inputs).
            if resuming is not None:
                resuming.join()
            services.queuer.close()
            if runtime is not None:
                runtime.stop()
            spool.close()

    app = FastAPI(
        title="Bulk Action Platform",
        version="1.0.0",
        summary="Bulk insert / update / upsert of CRM records, with per-record results and an audit trail.",
        lifespan=lifespan,
    )
    app.state.services = services
    problems.install(app, container.faults)
    for module in (bulk_actions, results, events):
        app.include_router(module.router, dependencies=[Depends(reject_unknown_query)])
    app.add_middleware(RateLimitHeaders)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _resume(services: Services, created_before: str) -> None:
    try:
        queuer = InputQueuer(services.container)
        try:
            count = resume_unfinished(services.container, queuer, redispatch=False, created_before=created_before)
        finally:
            queuer.close()
        if count:
            log.warning("resumed %d unfinished action(s)", count)
    except Exception:
        log.exception("resuming unfinished actions failed")


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
