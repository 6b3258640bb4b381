"""Quotas and the clock: what submission spends, and when it is.

Each port has one contract test suite (``tests/contract``) run against every adapter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class QuotaLimits:
    records_per_day: int
    max_active_actions: int


class QuotaExceededError(Exception):
    """``retry_after_seconds`` is None when no wait can help: the request alone is
    larger than the limit."""

    def __init__(self, limit: str, detail: str, retry_after_seconds: int | None) -> None:
        super().__init__(detail)
        self.limit = limit
        self.detail = detail
        self.retry_after_seconds = retry_after_seconds


class QuotaGate(Protocol):
    """Atomically checks and spends an account's quota (two callers never both spend
    the last unit). Raises ``QuotaExceededError`` and spends nothing when over."""

    def reserve(self, account_id: str, action_id: str, records: int, limits: QuotaLimits, now: datetime) -> None: ...

    def release(self, account_id: str, action_id: str) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...
