"""Quota on MongoDB: records per rolling 24 hours and concurrently active actions.

Each account's spends live in one document, and every change to it is a
compare-and-set on its revision: the document is read, the application's rule
decides (``application.quotas.check_quota``, as for every store), and the new spend
is written only if no other caller wrote in between (otherwise read and decide again). A single-document
update is atomic on MongoDB, so API replicas can never both spend the last unit,
and no transaction is needed.

The document keeps the spends that can still count (active, or recent); a separate
collection remembers every action ever reserved, so asking again for an old action
still spends nothing, as in SQLite.
"""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta

import orjson
from pymongo import MongoClient

from application.ports.quotas import QuotaLimits
from application.quotas import QuotaSpend, check_quota
from infrastructure.mongo.client import Connection, Document, exactly
from infrastructure.mongo.stand_in import create_once

# Inactive spends older than this are dropped from the account document. Far more than
# a day, so callers whose clocks disagree (each passes its own ``now``) still see them.
KEEP_INACTIVE = timedelta(days=7)
_MAX_ATTEMPTS = 1000


class MongoQuotaGate:
    def __init__(self, client: str | MongoClient[Document], database: str) -> None:
        self._connection = Connection(client)
        self._client = self._connection.client
        db = self._client[database]
        self._accounts = db["quota_accounts"]
        self._reserved = db["quota_reservations"]

    def reserve(self, account_id: str, action_id: str, records: int, limits: QuotaLimits, now: datetime) -> None:
        if self._reserved.find_one({"_id": exactly(_reservation_id(account_id, action_id))}, {"_id": 1}):
            return  # the same action asked again (a retried submission)
        spend = {
            "action_id": action_id,
            "records": records,
            "spent_at": now.isoformat(),
            "active": True,
        }
        for attempt in range(_MAX_ATTEMPTS):
            doc = self._accounts.find_one({"_id": exactly(account_id)})
            spends: list[Document] = [] if doc is None else doc["spends"]
            if any(s["action_id"] == action_id for s in spends):
                break
            check_quota(account_id, map(_spend, spends), records, limits, now)
            kept = [s for s in spends if s["active"] or s["spent_at"] > (now - KEEP_INACTIVE).isoformat()]
            if self._swap(account_id, doc, [*kept, spend]):
                break
            _back_off(attempt)
        else:
            raise RuntimeError(f"quota of account {account_id}: gave up after {_MAX_ATTEMPTS} concurrent changes")
        create_once(self._reserved, {"_id": _reservation_id(account_id, action_id)})  # taken: a racing retry

    def release(self, account_id: str, action_id: str) -> None:
        for attempt in range(_MAX_ATTEMPTS):
            doc = self._accounts.find_one({"_id": exactly(account_id)})
            if doc is None or not any(s["action_id"] == action_id and s["active"] for s in doc["spends"]):
                return
            spends = [{**s, "active": False} if s["action_id"] == action_id else s for s in doc["spends"]]
            if self._swap(account_id, doc, spends):
                return
            _back_off(attempt)
        raise RuntimeError(f"quota of account {account_id}: gave up after {_MAX_ATTEMPTS} concurrent changes")

    def _swap(self, account_id: str, seen: Document | None, spends: list[Document]) -> bool:
        """Write ``spends`` if the account document is still the one we read."""
        if seen is None:
            return create_once(self._accounts, {"_id": account_id, "rev": 1, "spends": spends})
        done = self._accounts.update_one(
            {"_id": exactly(account_id), "rev": seen["rev"]},
            {"$set": {"spends": spends, "rev": seen["rev"] + 1}},
        )
        return done.matched_count == 1

    def close(self) -> None:
        self._connection.close()


def _spend(doc: Document) -> QuotaSpend:
    return QuotaSpend(doc["action_id"], doc["records"], doc["spent_at"], doc["active"])


def _reservation_id(account_id: str, action_id: str) -> str:
    # JSON keeps the pair unambiguous whatever characters the ids hold.
    return orjson.dumps([account_id, action_id]).decode()


def _back_off(attempt: int) -> None:
    """A short random pause after a lost compare-and-set, so contenders spread out."""
    time.sleep(random.uniform(0, min(0.001 * (attempt + 1), 0.05)))
