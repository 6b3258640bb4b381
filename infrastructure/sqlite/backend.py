"""The embedded backends: SQLite files under the data dir.

``SQLiteDocumentStores`` keeps entities, read models, quota, accounts and request
counts (one file each: a writer of one never waits for a writer of another);
``SQLiteEventStorage`` is the event store (``events.db``) and the relay's position.
"""

from __future__ import annotations

import os
from pathlib import Path

from application.accounts import AccountStore, RateLimiter
from application.ports.entities import EntityStore
from application.ports.messaging import PositionStore
from application.ports.quotas import QuotaGate
from application.ports.read_models import ReadModelStore
from application.ports.webhooks import WebhookDeliveries
from infrastructure.settings import Settings
from infrastructure.sqlite import faults

EVENTS_FILE = "events.db"


class SQLiteDocumentStores:
    # Reads of a local file take microseconds, less than a hop to a thread pool.
    local = True
    is_transient = staticmethod(faults.is_transient)

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    @classmethod
    def from_settings(cls, settings: Settings) -> SQLiteDocumentStores:
        return cls(settings.data_dir)

    def entities(self) -> EntityStore:
        from infrastructure.sqlite.entities import SQLiteEntityStore

        return SQLiteEntityStore(self.data_dir / "entities.db")

    def open(self, label: str = "") -> ReadModelStore:
        """The live read models (label ""), or a set built aside under ``label``."""
        from infrastructure.sqlite.read_models import SQLiteReadModelStore

        return SQLiteReadModelStore(self.data_dir / _read_model_file(label))

    def discard(self, label: str) -> None:
        assert label, "refusing to discard the live read models"
        for suffix in ("", "-wal", "-shm"):
            (self.data_dir / (_read_model_file(label) + suffix)).unlink(missing_ok=True)

    def promote(self, label: str) -> None:
        live = self.data_dir / _read_model_file("")
        for suffix in ("-wal", "-shm", ""):
            (self.data_dir / (live.name + suffix)).unlink(missing_ok=True)
        os.replace(self.data_dir / _read_model_file(label), live)

    def quota(self) -> QuotaGate:
        from infrastructure.sqlite.quota import SQLiteQuotaGate

        return SQLiteQuotaGate(self.data_dir / "quota.db")

    def accounts(self) -> AccountStore:
        from infrastructure.sqlite.accounts import SQLiteAccountStore

        return SQLiteAccountStore(self.data_dir / "accounts.db")

    def rate_limiter(self) -> RateLimiter:
        from infrastructure.sqlite.rate_limits import SQLiteRateLimiter

        return SQLiteRateLimiter(self.data_dir / "ratelimits.db")

    def webhooks(self) -> WebhookDeliveries:
        from infrastructure.sqlite.webhooks import SQLiteWebhookDeliveries

        return SQLiteWebhookDeliveries(self.data_dir / "webhooks.db")

    def close(self) -> None:
        """Each store closes its own file."""


def _read_model_file(label: str) -> str:
    return f"readmodels.{label}.db" if label else "readmodels.db"


class SQLiteEventStorage:
    """The event store in the data dir, through the library's SQLite persistence with
    our batch recorder and mapper (see ``event_recorder``)."""

    is_transient = staticmethod(faults.is_transient)

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    @classmethod
    def from_settings(cls, settings: Settings) -> SQLiteEventStorage:
        return cls(settings.data_dir)

    def env(self) -> dict[str, str]:
        return {
            "PERSISTENCE_MODULE": "infrastructure.sqlite.event_recorder:EmbeddedSQLiteFactory",
            "SQLITE_DBNAME": str(self.data_dir / EVENTS_FILE),
            "SQLITE_LOCK_TIMEOUT": "60",
            "APPLICATION_RECORDER_TOPIC": "infrastructure.sqlite.event_recorder:BatchSQLiteApplicationRecorder",
        }

    def holds_events(self) -> bool:
        """Whether the data dir holds an event store (a mistyped --data-dir does not)."""
        return (self.data_dir / EVENTS_FILE).is_file()

    def positions(self) -> PositionStore:
        from infrastructure.sqlite.positions import SQLitePositionStore

        return SQLitePositionStore(self.data_dir / "relay.db")
