"""HTTP request count and latency by route template (``/v1/bulk-actions/{action_id}``,
never the raw path: ids must not become label values), as a small ASGI middleware so
that streamed responses are counted too. Only installed where metrics are on."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "unmatched"  # a path no route answers (404s of scanners): one label value


class RequestMetrics:
    def __init__(self, app: ASGIApp) -> None:
        from infrastructure.prometheus.metrics import http_request

        self.app = app
        self.record = http_request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception that escaped every handler

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            self.record(scope["method"], route, status, time.perf_counter() - started)
