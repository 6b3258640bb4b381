"""The IETF RateLimit headers: their format, and the middleware that adds them to
every response of an authenticated request, streamed ones included."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from api.http.ratelimit_headers import RateLimitHeaders, quota_refused, requests_refused
from application.accounts import RateDecision
from application.ports.quotas import QuotaExceededError, QuotaLimits

pytestmark = pytest.mark.unit


def test_a_refused_request_names_the_requests_policy_and_when_to_retry() -> None:
    problem = requests_refused(RateDecision(False, 100, 0, 17), 60)
    assert problem.status == 429 and problem.extra["limit"] == "requests_per_minute"
    assert problem.headers == {
        "RateLimit-Policy": '"requests";q=100;w=60',
        "RateLimit": '"requests";r=0;t=17',
        "Retry-After": "17",
    }


@pytest.mark.parametrize(
    ("limit", "policy", "state"),
    [
        ("records_per_day", '"records";q=5000;w=86400', '"records";r=0;t=3600'),
        ("max_active_actions", '"active";q=3', '"active";r=0;t=3600'),
    ],
)
def test_a_spent_quota_names_its_own_policy(limit: str, policy: str, state: str) -> None:
    problem = quota_refused(QuotaExceededError(limit, "spent", 3600), QuotaLimits(5000, 3))
    assert problem.extra["limit"] == limit
    assert problem.headers == {"RateLimit-Policy": policy, "RateLimit": state, "Retry-After": "3600"}


def test_an_input_that_can_never_fit_gets_the_policy_but_no_time_to_retry() -> None:
    problem = quota_refused(QuotaExceededError("records_per_day", "never fits", None), QuotaLimits(5000, 3))
    assert problem.status == 429 and problem.extra["limit"] == "records_per_day"
    assert problem.headers == {"RateLimit-Policy": '"records";q=5000;w=86400'}


def _run(app: Any, state: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "state": state}
    asyncio.run(RateLimitHeaders(app)(scope, receive, send))
    return sent


async def _streamed(scope: Any, receive: Any, send: Any) -> None:
    scope["state"]["ratelimit_headers"] = {"RateLimit": '"requests";r=4;t=9', "Retry-After": "9"}
    await send({"type": "http.response.start", "status": 200, "headers": [(b"retry-after", b"1")]})
    await send({"type": "http.response.body", "body": b"a", "more_body": True})
    await send({"type": "http.response.body", "body": b"b", "more_body": False})


def test_the_middleware_adds_the_headers_without_overriding_the_responses_own() -> None:
    start, *body = _run(_streamed, {})
    assert (b"ratelimit", b'"requests";r=4;t=9') in start["headers"]
    assert [v for k, v in start["headers"] if k == b"retry-after"] == [b"1"]
    assert [m["body"] for m in body] == [b"a", b"b"]


async def _own_policy_only(scope: Any, receive: Any, send: Any) -> None:
    scope["state"]["ratelimit_headers"] = {"RateLimit-Policy": '"requests";q=9;w=60', "RateLimit": '"requests";r=4;t=9'}
    await send({"type": "http.response.start", "status": 429, "headers": [(b"ratelimit-policy", b'"records";q=5')]})
    await send({"type": "http.response.body", "body": b""})


def test_a_response_with_its_own_policy_gets_no_state_of_another_policy() -> None:
    start, _ = _run(_own_policy_only, {})
    assert start["headers"] == [(b"ratelimit-policy", b'"records";q=5')]


async def _anonymous(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 401, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def test_a_request_without_a_decision_gets_no_ratelimit_headers() -> None:
    start, _ = _run(_anonymous, {})
    assert start["headers"] == []
