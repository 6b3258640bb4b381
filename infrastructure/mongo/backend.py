"""The production document store: MongoDB, through ONE client per process.

A ``MongoClient`` is a connection pool with its own monitor threads; every store of a
process (read models, quota, accounts, request counts) works through the one made
here, and ``close`` closes it after them.
"""

from __future__ import annotations

from application.accounts import AccountStore, RateLimiter
from application.ports.entities import EntityStore
from application.ports.quotas import QuotaGate
from application.ports.read_models import ReadModelStore
from application.ports.webhooks import WebhookDeliveries
from infrastructure.mongo import faults
from infrastructure.mongo.accounts import MongoAccountStore
from infrastructure.mongo.client import connect
from infrastructure.mongo.entities import MongoEntityStore
from infrastructure.mongo.quota import MongoQuotaGate
from infrastructure.mongo.rate_limits import MongoRateLimiter
from infrastructure.mongo.read_models import MongoReadModelStore, drop_read_models, promote_read_models
from infrastructure.mongo.webhooks import MongoWebhookDeliveries
from infrastructure.settings import ConfigurationError, Settings


class MongoDocumentStores:
    # Every read is a network round trip: an API runs them off its event loop.
    local = False
    is_transient = staticmethod(faults.is_transient)

    def __init__(self, uri: str, database: str) -> None:
        self.uri = uri
        self.database = database
        self.client = connect(uri)

    @classmethod
    def from_settings(cls, settings: Settings) -> MongoDocumentStores:
        if not settings.mongodb_uri:
            raise ConfigurationError("BULK_DOCUMENT_STORE=mongodb needs BULK_MONGODB_URI")
        return cls(settings.mongodb_uri, settings.mongodb_database)

    def entities(self) -> EntityStore:
        # The entity store still opens a client of its own (its constructor takes a URI).
        return MongoEntityStore(self.uri, self.database)

    def open(self, label: str = "") -> ReadModelStore:
        """The live read models (label ""), or a set built aside under ``label``."""
        return MongoReadModelStore(self.client, self.database, prefix=label)

    def discard(self, label: str) -> None:
        drop_read_models(self.client, self.database, prefix=label)

    def promote(self, label: str) -> None:
        promote_read_models(self.client, self.database, prefix=label)

    def quota(self) -> QuotaGate:
        return MongoQuotaGate(self.client, self.database)

    def accounts(self) -> AccountStore:
        return MongoAccountStore(self.client, self.database)

    def rate_limiter(self) -> RateLimiter:
        return MongoRateLimiter(self.client, self.database)

    def webhooks(self) -> WebhookDeliveries:
        return MongoWebhookDeliveries(self.client, self.database)

    def close(self) -> None:
        self.client.close()
