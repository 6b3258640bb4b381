"""The composition root: the one place that picks adapters from ``Settings``.

Nothing connects at import time; ``bootstrap`` builds everything and ``close``
releases it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from application.chunk_processing import ChunkProcessor
from application.completion import ActionCompleter
from application.event_store import BulkActionLog
from application.ports import EntityStore, MessageTransport, PositionStore, QuotaGate, QuotaLimits, ReadModelStore
from application.relay import Relay
from application.submission import Submission
from application.worker import ChunkWorker
from infrastructure.settings import Settings
from projections.projector import Projector


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ConfigurationError(Exception):
    pass


@dataclass
class Container:
    settings: Settings
    events: BulkActionLog
    entities: EntityStore
    read_models: ReadModelStore
    transport: MessageTransport
    positions: PositionStore
    quota: QuotaGate
    clock: SystemClock

    @property
    def limits(self) -> QuotaLimits:
        return QuotaLimits(self.settings.records_per_day, self.settings.max_active_actions)

    def submission(self) -> Submission:
        return Submission(self.events, self.quota, self.limits, self.clock)

    def completer(self) -> ActionCompleter:
        return ActionCompleter(self.events, self.quota)

    def processor(self) -> ChunkProcessor:
        return ChunkProcessor(self.events, self.entities, self.clock)

    def worker(self) -> ChunkWorker:
        return ChunkWorker(self.processor(), self.transport)

    def relay(self) -> Relay:
        return Relay(self.events, self.transport, self.positions)

    def projector(self, *, completing: bool = True) -> Projector:
        completer = self.completer().complete_if_done if completing else None
        return Projector(self.events, self.read_models, completer)

    def close(self) -> None:
        for part in (self.transport, self.entities, self.read_models, self.positions, self.quota):
            close = getattr(part, "close", None)
            if close is not None:
                close()
        self.events.close()


def event_store_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing library's environment for the chosen event store."""
    common = {"MAPPER_TOPIC": "infrastructure.events.mapper:FastMapper"}
    if settings.event_store == "sqlite":
        return {
            **common,
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(settings.data_dir / "events.db"),
            "SQLITE_LOCK_TIMEOUT": "60",
            "APPLICATION_RECORDER_TOPIC": "infrastructure.sqlite.event_recorder:BatchSQLiteApplicationRecorder",
        }
    raise ConfigurationError(f"event store {settings.event_store!r} is not available in this build")


def bootstrap(settings: Settings | None = None) -> Container:
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    events = BulkActionLog(env=event_store_env(settings))
    return Container(
        settings=settings,
        events=events,
        entities=_entity_store(settings),
        read_models=_read_model_store(settings),
        transport=_transport(settings),
        positions=_position_store(settings),
        quota=_quota(settings),
        clock=SystemClock(),
    )


def _entity_store(settings: Settings) -> EntityStore:
    if settings.document_store == "sqlite":
        from infrastructure.sqlite.entities import SQLiteEntityStore

        return SQLiteEntityStore(settings.data_dir / "entities.db")
    raise ConfigurationError(f"document store {settings.document_store!r} is not available in this build")


def _read_model_store(settings: Settings) -> ReadModelStore:
    if settings.document_store == "sqlite":
        from infrastructure.sqlite.read_models import SQLiteReadModelStore

        return SQLiteReadModelStore(settings.data_dir / "readmodels.db")
    raise ConfigurationError(f"document store {settings.document_store!r} is not available in this build")


def _quota(settings: Settings) -> QuotaGate:
    if settings.document_store == "sqlite":
        from infrastructure.sqlite.quota import SQLiteQuotaGate

        return SQLiteQuotaGate(settings.data_dir / "quota.db")
    raise ConfigurationError(f"document store {settings.document_store!r} is not available in this build")


def _position_store(settings: Settings) -> PositionStore:
    if settings.event_store == "sqlite":
        from infrastructure.sqlite.positions import SQLitePositionStore

        return SQLitePositionStore(settings.data_dir / "relay.db")
    raise ConfigurationError(f"event store {settings.event_store!r} is not available in this build")


def _transport(settings: Settings) -> MessageTransport:
    if settings.transport == "inprocess":
        from infrastructure.inprocess.transport import InProcessTransport

        return InProcessTransport(settings.delivery_limit)
    raise ConfigurationError(f"transport {settings.transport!r} is not available in this build")
