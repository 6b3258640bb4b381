"""The production event store: PostgreSQL, with the relay's position and the
single-active locks of relays and projectors on the same server."""

from __future__ import annotations

from application.ports.messaging import PositionStore
from infrastructure.postgres import faults
from infrastructure.postgres.event_store import postgres_env
from infrastructure.postgres.positions import PostgresPositionStore, SingleActiveLock
from infrastructure.settings import ConfigurationError, Settings


class PostgresEventStorage:
    is_transient = staticmethod(faults.is_transient)

    def __init__(self, settings: Settings) -> None:
        if not settings.postgres_dsn:
            raise ConfigurationError("BULK_EVENT_STORE=postgres needs BULK_POSTGRES_DSN")
        self.settings = settings
        self.dsn = settings.postgres_dsn

    @classmethod
    def from_settings(cls, settings: Settings) -> PostgresEventStorage:
        return cls(settings)

    def env(self) -> dict[str, str]:
        return postgres_env(self.settings)

    def holds_events(self) -> bool:
        """A server's event store is there once it answers (its tables are made on use)."""
        return True

    def positions(self) -> PositionStore:
        return PostgresPositionStore(self.dsn)

    def single_active_lock(self, name: str) -> SingleActiveLock:
        return SingleActiveLock(self.dsn, name)
