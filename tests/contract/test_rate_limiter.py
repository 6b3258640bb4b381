"""Contract of the RateLimiter port: fixed windows per account, atomic across processes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.contract import adapters
from tests.waiting import run_in_threads

START = datetime(2026, 11, 1, 12, 0, 10, tzinfo=UTC)  # 10 s into a minute


@pytest.fixture(params=sorted(adapters.RATE_LIMITERS))
def limiter_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """Builds limiters on one storage, as separate API processes would."""
    yield from adapters.several(adapters.RATE_LIMITERS, request, tmp_path)


def test_requests_are_counted_down_to_the_limit_then_refused(limiter_factory: Any) -> None:
    limiter = limiter_factory()
    decisions = [limiter.hit("acc", 3, 60, START) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert all(d.limit == 3 and d.reset_seconds == 50 for d in decisions)


def test_a_refused_request_is_not_counted_and_a_new_window_starts_afresh(
    limiter_factory: Any,
) -> None:
    limiter = limiter_factory()
    for _ in range(5):
        limiter.hit("acc", 2, 60, START)
    later = limiter.hit("acc", 2, 60, START + timedelta(seconds=50))
    assert later.allowed and later.remaining == 1 and later.reset_seconds == 60


def test_accounts_are_counted_apart(limiter_factory: Any) -> None:
    limiter = limiter_factory()
    assert limiter.hit("one", 1, 60, START).allowed
    assert not limiter.hit("one", 1, 60, START).allowed
    assert limiter.hit("two", 1, 60, START).allowed


def test_limiters_sharing_a_store_never_both_take_the_last_request(limiter_factory: Any) -> None:
    limiters = [limiter_factory() for _ in range(4)]
    limit, per_thread = 25, 20
    allowed: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(limiters))

    def hammer(limiter: Any) -> None:
        barrier.wait()
        for _ in range(per_thread):
            decision = limiter.hit("shared", limit, 60, START)
            with lock:
                allowed.append(decision.allowed)

    run_in_threads(hammer, ((lim,) for lim in limiters))
    assert len(allowed) == len(limiters) * per_thread
    assert allowed.count(True) == limit
