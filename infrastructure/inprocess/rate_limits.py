"""Request counts in this process's memory: the stand-in while the shared store of
request counts cannot be written (see application.accounts.FallbackRateLimiter)."""

from __future__ import annotations

import threading
from datetime import datetime

from application.accounts import RateDecision, counted, fixed_window


class InProcessRateLimiter:
    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, int]] = {}  # account -> (window start, count)
        self._lock = threading.Lock()

    def hit(self, account_id: str, limit: int, window_seconds: int, now: datetime) -> RateDecision:
        window, reset = fixed_window(now, window_seconds)
        with self._lock:
            start, used = self._counts.get(account_id, (window, 0))
            used = used if start == window else 0
            decision = counted(used, limit, reset)
            if decision.allowed:
                self._counts[account_id] = (window, used + 1)
        return decision

    def close(self) -> None:
        with self._lock:
            self._counts.clear()
