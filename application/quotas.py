"""The quota rule: records per rolling 24 hours, and concurrently active actions.

One pure function decides for every store (the eventsourcing ``searchablecontent``
example: the application computes, the recorder stores). A store reads the account's
spends that can still count (``still_counting``), asks ``check_quota`` and writes the
new spend, all in one atomic step of its own (a transaction, a compare-and-set), so
two callers never both spend the last unit. A third store reads and writes; it does
not decide.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from application.ports.quotas import QuotaExceededError, QuotaLimits

DAY = timedelta(days=1)
# When the active-actions limit is reached: try again after this long.
RETRY_WHEN_ACTIVE_SECONDS = 60


@dataclass(frozen=True, slots=True)
class QuotaSpend:
    """What one action spent: its records, when (ISO 8601 in UTC), and whether it is
    still active (not yet completed or cancelled)."""

    action_id: str
    records: int
    spent_at: str
    active: bool


def still_counting(now: datetime) -> str:
    """Spends after this instant count against records per day; active ones count
    against active actions whenever they were made. A store reads the spends that are
    active or after it (ISO strings compare in time order)."""
    return (now - DAY).isoformat()


def check_quota(
    account_id: str, spends: Iterable[QuotaSpend], records: int, limits: QuotaLimits, now: datetime
) -> None:
    """Refuse (``QuotaExceededError``, with when to retry) a new action of ``records``
    records, given the account's ``spends`` that can still count."""
    spends = list(spends)
    active = sum(1 for s in spends if s.active)
    if active >= limits.max_active_actions:
        raise QuotaExceededError(
            "max_active_actions",
            f"account {account_id} already has {active} active actions (limit {limits.max_active_actions})",
            retry_after_seconds=RETRY_WHEN_ACTIVE_SECONDS,
        )
    since = still_counting(now)
    window = [s for s in spends if s.spent_at > since]
    spent = sum(s.records for s in window)
    if spent + records > limits.records_per_day:
        oldest = min((s.spent_at for s in window), default=None)
        retry = 60 if oldest is None else int((datetime.fromisoformat(oldest) + DAY - now).total_seconds()) + 1
        raise QuotaExceededError(
            "records_per_day",
            f"{records} records would exceed account {account_id}'s {limits.records_per_day}"
            f" records per 24 hours ({spent} already used)",
            retry_after_seconds=max(retry, 1),
        )
