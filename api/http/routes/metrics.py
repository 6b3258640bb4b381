"""``GET /metrics``: the Prometheus text exposition (no auth, like /healthz: scrapers
reach it from inside the deployment's network; it names no account and no record)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

router = APIRouter(tags=["health"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    body, content_type = request.app.state.metrics.render()
    return Response(body, media_type=content_type)
