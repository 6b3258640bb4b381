"""The quota rule, as every quota store applies it (application.quotas)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from application.ports.quotas import QuotaExceededError, QuotaLimits
from application.quotas import QuotaSpend, check_quota, still_counting

pytestmark = pytest.mark.unit
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _spend(records: int, hours_ago: float, *, active: bool = False) -> QuotaSpend:
    return QuotaSpend(f"a{records}-{hours_ago}", records, (NOW - timedelta(hours=hours_ago)).isoformat(), active)


def test_a_new_action_within_both_limits_is_let_in() -> None:
    check_quota("acme", [_spend(40, 1, active=True)], 60, QuotaLimits(100, 2), NOW)


def test_the_active_actions_limit_refuses_whatever_the_records_and_says_retry_in_a_minute() -> None:
    with pytest.raises(QuotaExceededError) as refused:
        check_quota("acme", [_spend(1, 30, active=True), _spend(1, 1, active=True)], 1, QuotaLimits(100, 2), NOW)
    assert refused.value.limit == "max_active_actions" and refused.value.retry_after_seconds == 60


def test_records_past_the_daily_limit_are_refused_until_the_oldest_counting_spend_is_a_day_old() -> None:
    with pytest.raises(QuotaExceededError) as refused:
        check_quota("acme", [_spend(50, 20), _spend(30, 2)], 30, QuotaLimits(100, 5), NOW)
    assert refused.value.limit == "records_per_day"
    assert refused.value.retry_after_seconds == 4 * 3600 + 1
    assert "80 already used" in refused.value.detail


def test_spends_older_than_a_day_no_longer_count_against_records_per_day() -> None:
    check_quota("acme", [_spend(100, 25), _spend(100, 24)], 100, QuotaLimits(100, 5), NOW)
    assert still_counting(NOW) == (NOW - timedelta(days=1)).isoformat()
