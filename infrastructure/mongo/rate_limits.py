"""Per-account request counts in fixed windows, on MongoDB.

One document per account holds the current window and its count. Counting is one
conditional ``$inc`` (same window, count below the limit), atomic on the server, so
two API processes never both take the last request of a window. Moving to a new
window is a compare-and-set on the (window, count) that was read; a lost race reads
again. As in SQLite, any window other than the caller's starts the count afresh; the
windows and the answers are the application's (``fixed_window``, ``counted``).
"""

from __future__ import annotations

from datetime import datetime

from pymongo import MongoClient, ReturnDocument

from application.accounts import RateDecision, counted, fixed_window
from infrastructure.mongo.client import Connection, Document, exactly
from infrastructure.mongo.stand_in import create_once

_MAX_ATTEMPTS = 1000


class MongoRateLimiter:
    def __init__(self, client: str | MongoClient[Document], database: str) -> None:
        self._connection = Connection(client)
        self._client = self._connection.client
        self._counts = self._client[database]["request_counts"]

    def hit(self, account_id: str, limit: int, window_seconds: int, now: datetime) -> RateDecision:
        window, reset = fixed_window(now, window_seconds)
        refused = RateDecision(False, limit, 0, reset)
        if limit < 1:
            return refused
        for _ in range(_MAX_ATTEMPTS):
            found = self._counts.find_one_and_update(
                {"_id": exactly(account_id), "window_start": window, "count": {"$lt": limit}},
                {"$inc": {"count": 1}},
                return_document=ReturnDocument.AFTER,
            )
            if found is not None:
                return counted(found["count"] - 1, limit, reset)
            if self._start_window(account_id, window):
                return counted(0, limit, reset)
            current = self._counts.find_one({"_id": exactly(account_id)})
            if current is not None and current["window_start"] == window and current["count"] >= limit:
                return refused
        raise RuntimeError(f"request count of account {account_id}: gave up after {_MAX_ATTEMPTS} tries")

    def _start_window(self, account_id: str, window: int) -> bool:
        """Count the first request of ``window`` if the account is in another window (or
        new); False if someone else moved or counted meanwhile."""
        current = self._counts.find_one({"_id": exactly(account_id)})
        if current is None:
            return create_once(self._counts, {"_id": account_id, "window_start": window, "count": 1})
        if current["window_start"] == window:
            return False
        done = self._counts.update_one(
            {
                "_id": exactly(account_id),
                "window_start": current["window_start"],
                "count": current["count"],
            },
            {"$set": {"window_start": window, "count": 1}},
        )
        return done.matched_count == 1

    def close(self) -> None:
        self._connection.close()
