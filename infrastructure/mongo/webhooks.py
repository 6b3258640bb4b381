"""Webhook deliveries and their attempts, on MongoDB (the production document store).

A delivery is claimed with a compare-and-set on its attempt count (no transaction:
the test server has none that isolate, see docs/mongodb-gaps.md #6), so two senders
never both take the same attempt. Times are numbers (seconds since the epoch), never
date-like strings (#2); every filter on an id goes through ``exactly`` (#1).
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Any

from pymongo import ASCENDING, MongoClient
from pymongo.errors import DuplicateKeyError

from application.ports.webhooks import PENDING, Delivery, DeliveryAttempt
from infrastructure.mongo.client import Connection, Document, exactly

_FIELDS = ("action_id", "account_id", "event", "url", "payload", "scheduled_at", "give_up_at", "state", "attempts")


class MongoWebhookDeliveries:
    def __init__(self, client: str | MongoClient[Document], database: str) -> None:
        self._connection = Connection(client)
        db = self._connection.client[database]
        self._deliveries = db["webhook_deliveries"]
        self._attempts = db["webhook_attempts"]
        with self._connection.prepared():
            self._deliveries.create_index([("state", ASCENDING), ("next_attempt_at", ASCENDING)])
            self._deliveries.create_index("action_id")
            self._attempts.create_index("delivery_id")

    def schedule(self, delivery: Delivery) -> bool:
        doc = {name: getattr(delivery, name) for name in _FIELDS}
        doc |= {"_id": delivery.delivery_id, "state": PENDING, "attempts": 0, "next_attempt_at": delivery.scheduled_at}
        try:
            self._deliveries.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    def claim_due(self, now: float, lease_seconds: float, limit: int) -> list[Delivery]:
        due = self._deliveries.find({"state": exactly(PENDING), "next_attempt_at": {"$lte": now}})
        claimed = []
        for doc in due.sort("next_attempt_at", ASCENDING).limit(limit):
            taken = self._deliveries.update_one(
                {"_id": exactly(doc["_id"]), "attempts": doc["attempts"], "state": exactly(PENDING)},
                {"$set": {"next_attempt_at": now + lease_seconds}, "$inc": {"attempts": 1}},
            )
            if taken.matched_count == 1:
                claimed.append(
                    replace(_delivery(doc), attempts=doc["attempts"] + 1, next_attempt_at=now + lease_seconds)
                )
        return claimed

    def record(self, attempt: DeliveryAttempt, state: str, next_attempt_at: float | None) -> None:
        a = attempt
        with contextlib.suppress(DuplicateKeyError):  # recorded already (the same attempt, again)
            self._attempts.insert_one(
                {
                    "_id": f"{a.delivery_id}:{a.attempt}",
                    "delivery_id": a.delivery_id,
                    "attempt": a.attempt,
                    "at": a.at,
                    "status_code": a.status_code,
                    "error": a.error,
                    "duration_ms": a.duration_ms,
                }
            )
        self._deliveries.update_one(
            {"_id": exactly(a.delivery_id), "attempts": a.attempt},
            {"$set": {"state": state, "next_attempt_at": next_attempt_at}},
        )

    def for_action(self, account_id: str, action_id: str) -> list[tuple[Delivery, list[DeliveryAttempt]]]:
        found = []
        query = {"action_id": exactly(action_id), "account_id": exactly(account_id)}
        for doc in self._deliveries.find(query).sort("scheduled_at", ASCENDING):
            attempts = self._attempts.find({"delivery_id": exactly(doc["_id"])}).sort("attempt", ASCENDING)
            found.append((_delivery(doc), [_attempt(a) for a in attempts]))
        return found

    def close(self) -> None:
        self._connection.close()


def _delivery(doc: Document) -> Delivery:
    fields: dict[str, Any] = {name: doc[name] for name in _FIELDS}
    return Delivery(delivery_id=doc["_id"], next_attempt_at=doc.get("next_attempt_at"), **fields)


def _attempt(doc: Document) -> DeliveryAttempt:
    return DeliveryAttempt(
        doc["delivery_id"], doc["attempt"], doc["at"], doc["status_code"], doc["error"], doc["duration_ms"]
    )
