"""Accounts, the hashes of their API keys and their webhook secrets, on MongoDB.
The webhook secret is stored as it is: the sender needs it to sign (see
docs/security.md).

Unique indexes on the name and on the key hash decide, not a read: of two API
processes creating the same name at once, one gets ``DuplicateAccountError``.
"""

from __future__ import annotations

from pymongo import MongoClient
from pymongo.errors import DuplicateKeyError

from application.accounts import Account, AccountLimits, DuplicateAccountError
from infrastructure.mongo.client import Connection, Document, exactly


class MongoAccountStore:
    def __init__(self, client: str | MongoClient[Document], database: str) -> None:
        self._connection = Connection(client)
        self._client = self._connection.client
        self._accounts = self._client[database]["accounts"]
        with self._connection.prepared():
            self._accounts.create_index("name", unique=True)
            self._accounts.create_index("key_hash", unique=True)

    def add(self, account: Account) -> None:
        limits = account.limits
        try:
            self._accounts.insert_one(
                {
                    "_id": account.account_id,
                    "name": account.name,
                    "key_hash": account.key_hash,
                    "requests_per_minute": limits.requests_per_minute,
                    "records_per_day": limits.records_per_day,
                    "max_active_actions": limits.max_active_actions,
                    "created_at": account.created_at,
                    "webhook_secret": account.webhook_secret,
                }
            )
        except DuplicateKeyError as exc:
            raise DuplicateAccountError(f"an account named {account.name!r} already exists") from exc

    def by_key_hash(self, key_hash: str) -> Account | None:
        return _account(self._accounts.find_one({"key_hash": exactly(key_hash)}))

    def get(self, account_id: str) -> Account | None:
        return _account(self._accounts.find_one({"_id": exactly(account_id)}))

    def set_webhook_secret(self, account_id: str, secret: str) -> bool:
        found = self._accounts.update_one({"_id": exactly(account_id)}, {"$set": {"webhook_secret": secret}})
        return found.matched_count == 1

    def close(self) -> None:
        self._connection.close()


def _account(doc: Document | None) -> Account | None:
    if doc is None:
        return None
    limits = AccountLimits(doc["requests_per_minute"], doc["records_per_day"], doc["max_active_actions"])
    return Account(doc["_id"], doc["name"], doc["key_hash"], limits, doc["created_at"], doc.get("webhook_secret"))
