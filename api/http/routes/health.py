"""Liveness and readiness, for a load balancer or an orchestrator: no auth, no body
worth parsing (a status word and, when not ready, what is missing)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.http.deps import ApiState

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Ready to take work",
    responses={503: {"description": "Not ready: what is missing (startup, event_store, document_store, broker)"}},
)
def readyz(request: Request) -> Any:
    """Ready once the runtime (or the API's own resume) has swept the spool files that
    gone processes left (resuming their unfinished actions goes on while it serves),
    and while the event store, the document store and the broker each answer a ping
    (within 2 s; run here, on the thread pool, as this route is synchronous)."""
    started: Callable[[], bool] = request.app.state.started
    state: ApiState = request.app.state.api
    missing = [] if started() else ["startup"]
    missing += state.services.monitoring.unreachable()
    if not missing:
        return {"status": "ready"}
    return JSONResponse({"status": "not_ready", "missing": missing}, status_code=503)
