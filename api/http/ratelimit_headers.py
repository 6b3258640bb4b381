"""IETF RateLimit / RateLimit-Policy headers (draft-ietf-httpapi-ratelimit-headers).

Each request's decision is kept on the request state; a small ASGI middleware adds
the headers to whatever response goes out (streamed ones included).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http.problems import ProblemError, quota_problem
from application.accounts import RateDecision
from application.ports.quotas import QuotaExceededError, QuotaLimits

_STATE_KEY = "ratelimit_headers"


def _headers(policy: str, quota: int, window: int | None, remaining: int, reset: int | None) -> dict[str, str]:
    """The policy, and its state when there is a time it resets (None: no wait helps)."""
    w = f";w={window}" if window else ""
    headers = {"RateLimit-Policy": f'"{policy}";q={quota}{w}'}
    if reset is not None:
        headers["RateLimit"] = f'"{policy}";r={remaining};t={reset}'
    return headers


def record_decision(request: Request, decision: RateDecision, window: int) -> None:
    request.state.ratelimit_headers = _headers(
        "requests", decision.limit, window, decision.remaining, decision.reset_seconds
    )


def requests_refused(decision: RateDecision, window: int) -> ProblemError:
    headers = _headers("requests", decision.limit, window, 0, decision.reset_seconds)
    return ProblemError(
        429,
        "rate-limited",
        "Too Many Requests",
        f"more than {decision.limit} requests per {window}s; retry in {decision.reset_seconds}s",
        headers={**headers, "Retry-After": str(decision.reset_seconds)},
        limit="requests_per_minute",
    )


def quota_refused(exc: QuotaExceededError, limits: QuotaLimits) -> ProblemError:
    """The quota problem with the policy's headers; the RateLimit state (remaining,
    reset) only when waiting can help: a request larger than the quota never fits."""
    if exc.limit == "records_per_day":
        headers = _headers("records", limits.records_per_day, 86400, 0, exc.retry_after_seconds)
    else:
        headers = _headers("active", limits.max_active_actions, None, 0, exc.retry_after_seconds)
    problem = quota_problem(exc)  # the app's own answer to a quota error, plus the policy headers
    problem.headers = {**headers, **problem.headers}
    return problem


_PAIR = {b"ratelimit", b"ratelimit-policy"}


class RateLimitHeaders:
    """Adds the request's RateLimit headers to a response that does not set its own.

    The two headers go together: a response naming its own policy (a spent quota)
    gets neither of the request's, so ``RateLimit`` never states a policy that
    ``RateLimit-Policy`` does not declare."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                state: dict[str, Any] = scope.get("state") or {}
                extra = state.get(_STATE_KEY)
                if extra:
                    present = {k.lower() for k, _ in message.get("headers", [])}
                    if present & _PAIR:
                        present |= _PAIR
                    added = [
                        (k.lower().encode(), v.encode()) for k, v in extra.items() if k.lower().encode() not in present
                    ]
                    message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
