"""Contract of the QuotaGate port: limits hold, and hold under concurrency."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from application.ports.quotas import QuotaExceededError, QuotaLimits
from tests.waiting import run_in_threads

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def test_spending_within_the_daily_records_limit_is_allowed(quota_gate: Any) -> None:
    limits = QuotaLimits(records_per_day=100, max_active_actions=10)
    quota_gate.reserve("acc", "a1", 60, limits, NOW)
    quota_gate.reserve("acc", "a2", 40, limits, NOW)
    with pytest.raises(QuotaExceededError) as refused:
        quota_gate.reserve("acc", "a3", 1, limits, NOW)
    assert refused.value.limit == "records_per_day"
    assert refused.value.retry_after_seconds > 0


def test_records_spent_more_than_a_day_ago_no_longer_count(quota_gate: Any) -> None:
    limits = QuotaLimits(records_per_day=100, max_active_actions=10)
    quota_gate.reserve("acc", "a1", 100, limits, NOW - timedelta(hours=25))
    quota_gate.reserve("acc", "a2", 100, limits, NOW)


def test_the_retry_hint_points_at_when_the_oldest_spend_leaves_the_window(quota_gate: Any) -> None:
    limits = QuotaLimits(records_per_day=100, max_active_actions=10)
    quota_gate.reserve("acc", "a1", 100, limits, NOW - timedelta(hours=23))
    with pytest.raises(QuotaExceededError) as refused:
        quota_gate.reserve("acc", "a2", 1, limits, NOW)
    assert 3500 <= refused.value.retry_after_seconds <= 3601


def test_active_actions_are_limited_until_released(quota_gate: Any) -> None:
    limits = QuotaLimits(records_per_day=1000, max_active_actions=2)
    quota_gate.reserve("acc", "a1", 1, limits, NOW)
    quota_gate.reserve("acc", "a2", 1, limits, NOW)
    with pytest.raises(QuotaExceededError) as refused:
        quota_gate.reserve("acc", "a3", 1, limits, NOW)
    assert refused.value.limit == "max_active_actions"
    quota_gate.release("acc", "a1")
    quota_gate.reserve("acc", "a3", 1, limits, NOW)


def test_accounts_do_not_share_quota(quota_gate: Any) -> None:
    limits = QuotaLimits(records_per_day=10, max_active_actions=1)
    quota_gate.reserve("one", "a1", 10, limits, NOW)
    quota_gate.reserve("two", "a2", 10, limits, NOW)


def test_reserving_again_for_the_same_action_spends_nothing_more(quota_gate: Any) -> None:
    limits = QuotaLimits(records_per_day=10, max_active_actions=1)
    quota_gate.reserve("acc", "a1", 10, limits, NOW)
    quota_gate.reserve("acc", "a1", 10, limits, NOW)


def test_concurrent_callers_never_both_spend_the_last_unit(quota_gate_factory: Any) -> None:
    limits = QuotaLimits(records_per_day=10, max_active_actions=1000)
    gates = [quota_gate_factory() for _ in range(8)]
    granted: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(gates))

    def spend(gate: Any) -> None:
        barrier.wait()
        for _ in range(5):
            action = str(uuid.uuid4())
            try:
                gate.reserve("acc", action, 1, limits, NOW)
            except QuotaExceededError:
                continue
            with lock:
                granted.append(action)

    run_in_threads(spend, ((g,) for g in gates))
    assert len(granted) == 10
