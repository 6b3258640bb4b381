"""The composition root: the one place that picks adapters from ``Settings``.

Nothing connects at import time; ``bootstrap`` builds everything and ``close``
releases it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from application.accounts import AccountStore, FallbackRateLimiter, RateLimiter
from application.chunk_processing import ChunkProcessor
from application.completion import ActionCompleter
from application.event_store import BulkActionLog
from application.faults import FaultClassifier, FaultPolicy, any_of, is_transient_os_error
from application.ports.entities import EntityStore
from application.ports.messaging import ChunkTrial, MessageTransport, PositionStore
from application.ports.quotas import QuotaGate, QuotaLimits
from application.ports.read_models import ReadModelStore
from application.relay import Relay
from application.reversion import Reversion
from application.submission import Submission
from application.worker import ChunkWorker
from infrastructure.inprocess.rate_limits import InProcessRateLimiter
from infrastructure.settings import Settings
from projections.projector import Projector

if TYPE_CHECKING:
    from infrastructure.postgres.positions import SingleActiveLock

T = TypeVar("T")


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
    accounts: AccountStore
    rate_limiter: RateLimiter
    faults: FaultPolicy

    @property
    def limits(self) -> QuotaLimits:
        return QuotaLimits(self.settings.records_per_day, self.settings.max_active_actions)

    def submission(self) -> Submission:
        from infrastructure.sqlite.key_index import SQLiteKeyIndex

        scratch = self.settings.data_dir
        return Submission(self.events, self.quota, self.limits, self.clock, lambda: SQLiteKeyIndex(scratch))

    def reversion(self) -> Reversion:
        return Reversion(self.events, self.quota, self.clock)

    def completer(self) -> ActionCompleter:
        return ActionCompleter(self.events, self.quota, self.entities)

    def processor(self) -> ChunkProcessor:
        return ChunkProcessor(self.events, self.entities, self.clock, self.faults)

    def worker(self, trial: ChunkTrial | None = None) -> ChunkWorker:
        return ChunkWorker(self.processor(), self.transport, trial)

    def relay(self) -> Relay:
        return Relay(self.events, self.transport, self.positions, self.faults)

    def projector(self, *, completing: bool = True) -> Projector:
        completer = self.completer().complete_if_done if completing else None
        return Projector(self.events, self.read_models, completer, faults=self.faults)

    def close(self) -> None:
        for part in (
            self.transport,
            self.entities,
            self.read_models,
            self.positions,
            self.quota,
            self.accounts,
            self.rate_limiter,
        ):
            close = getattr(part, "close", None)
            if close is not None:
                close()
        self.events.close()


def fault_policy(settings: Settings) -> FaultPolicy:
    """What counts as an infrastructure fault for the adapters ``settings`` pick."""
    from infrastructure.events import faults as event_faults
    from infrastructure.sqlite import faults as sqlite_faults

    # SQLite is always in use: the embedded stores, or scratch files (key index).
    classifiers: list[FaultClassifier] = [is_transient_os_error, sqlite_faults.is_transient, event_faults.is_transient]
    if settings.event_store == "postgres":
        from infrastructure.postgres import faults as postgres_faults

        classifiers.append(postgres_faults.is_transient)
    if settings.document_store == "mongodb":
        from infrastructure.mongo import faults as mongo_faults

        classifiers.append(mongo_faults.is_transient)
    if settings.transport == "rabbitmq":
        from infrastructure.rabbitmq import faults as rabbitmq_faults

        classifiers.append(rabbitmq_faults.is_transient)
    return FaultPolicy(any_of(*classifiers))


def event_store_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing library's environment for the chosen event store."""
    common = {"MAPPER_TOPIC": "infrastructure.events.mapper:FastMapper"}
    if settings.event_store == "sqlite":
        return {
            **common,
            "PERSISTENCE_MODULE": "infrastructure.sqlite.event_recorder:EmbeddedSQLiteFactory",
            "SQLITE_DBNAME": str(settings.data_dir / "events.db"),
            "SQLITE_LOCK_TIMEOUT": "60",
            "APPLICATION_RECORDER_TOPIC": "infrastructure.sqlite.event_recorder:BatchSQLiteApplicationRecorder",
        }
    if not settings.postgres_dsn:
        raise ConfigurationError("BULK_EVENT_STORE=postgres needs BULK_POSTGRES_DSN")
    from infrastructure.postgres.event_store import postgres_env

    return {**common, **postgres_env(settings)}


class OutdatedStoreError(ConfigurationError):
    """A store written by an earlier release that must be migrated before use."""


class DataDirError(ConfigurationError):
    """The data dir is missing (for a command that only reads), or cannot be written."""


def bootstrap(settings: Settings | None = None, *, create: bool = True, migrating: bool = False) -> Container:
    """Every adapter, from ``settings``. Without ``create`` a data dir that holds no
    event store is refused (a mistyped ``--data-dir`` must not become a new, empty one).
    A store that needs ``bulkactions migrate`` is refused (``OutdatedStoreError``)
    unless ``migrating``."""
    settings = settings or Settings()
    _checked_data_dir(settings, create=create)
    events = BulkActionLog(env=event_store_env(settings))
    try:
        container = _container(settings, events)
    except BaseException:
        events.close()  # a process waiting for a server at start tries again: leave nothing open
        raise
    if not migrating and container.entities.needs_owner_migration():
        container.close()
        raise OutdatedStoreError(
            "the entity store was written before entities belonged to accounts;"
            " run `bulkactions migrate` once (same --data-dir and settings) to give each entity"
            " the account that inserted it"
        )
    return container


def _checked_data_dir(settings: Settings, *, create: bool) -> None:
    data_dir = settings.data_dir
    if not create and settings.event_store == "sqlite" and not (data_dir / "events.db").is_file():
        raise DataDirError(f"no bulk actions data in {data_dir}: check --data-dir (or BULK_DATA_DIR)")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(f"cannot create the data dir {data_dir}: {exc.strerror}") from None
    if not os.access(data_dir, os.W_OK):
        # SQLite needs to write even to read (WAL index, locks): refuse in one line.
        raise DataDirError(f"the data dir {data_dir} is read-only: bulkactions needs to write there")


def _container(settings: Settings, events: BulkActionLog) -> Container:
    faults = fault_policy(settings)
    built: list[object] = []

    def kept(part: T) -> T:
        built.append(part)
        return part

    try:
        return Container(
            settings=settings,
            events=events,
            entities=kept(_entity_store(settings)),
            read_models=kept(read_model_store(settings)),
            transport=kept(_transport(settings, faults)),
            positions=kept(_position_store(settings)),
            quota=kept(_quota(settings)),
            clock=SystemClock(),
            accounts=kept(_accounts(settings)),
            rate_limiter=FallbackRateLimiter(kept(_rate_limiter(settings)), InProcessRateLimiter(), faults),
            faults=faults,
        )
    except BaseException:
        # A server that is down at start: close the adapters built so far (clients,
        # connections, their threads) before the caller tries again.
        for part in built:
            close = getattr(part, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()
        raise


def _entity_store(settings: Settings) -> EntityStore:
    if settings.document_store == "sqlite":
        from infrastructure.sqlite.entities import SQLiteEntityStore

        return SQLiteEntityStore(settings.data_dir / "entities.db")
    from infrastructure.mongo.entities import MongoEntityStore

    return MongoEntityStore(_mongodb_uri(settings), settings.mongodb_database)


def _mongodb_uri(settings: Settings) -> str:
    if not settings.mongodb_uri:
        raise ConfigurationError("BULK_DOCUMENT_STORE=mongodb needs BULK_MONGODB_URI")
    return settings.mongodb_uri


def read_model_store(settings: Settings, label: str = "") -> ReadModelStore:
    """The live read models (label ""), or a separate set named by ``label`` that a
    replay builds aside and ``promote_read_models`` then puts in place."""
    if settings.document_store == "sqlite":
        from infrastructure.sqlite.read_models import SQLiteReadModelStore

        return SQLiteReadModelStore(settings.data_dir / _sqlite_read_model_file(label))
    from infrastructure.mongo.read_models import MongoReadModelStore

    return MongoReadModelStore(_mongodb_uri(settings), settings.mongodb_database, prefix=label)


def _sqlite_read_model_file(label: str) -> str:
    return f"readmodels.{label}.db" if label else "readmodels.db"


def discard_read_models(settings: Settings, label: str) -> None:
    """Delete a set of read models built aside (never the live one)."""
    assert label, "refusing to discard the live read models"
    if settings.document_store == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            (settings.data_dir / (_sqlite_read_model_file(label) + suffix)).unlink(missing_ok=True)
        return
    from infrastructure.mongo.read_models import drop_read_models

    drop_read_models(_mongodb_uri(settings), settings.mongodb_database, prefix=label)


@contextmanager
def read_models_aside(settings: Settings, label: str) -> Iterator[ReadModelStore]:
    """An empty set of read models under ``label`` for the length of a block, then gone
    (what ``verify`` rebuilds into)."""
    discard_read_models(settings, label)
    store = read_model_store(settings, label)
    try:
        yield store
    finally:
        store.close()
        discard_read_models(settings, label)


def promote_read_models(settings: Settings, label: str) -> None:
    """Make the read models built aside under ``label`` the live ones (stop projectors first)."""
    if settings.document_store == "sqlite":
        live = settings.data_dir / _sqlite_read_model_file("")
        for suffix in ("-wal", "-shm", ""):
            (settings.data_dir / (live.name + suffix)).unlink(missing_ok=True)
        os.replace(settings.data_dir / _sqlite_read_model_file(label), live)
        return
    from infrastructure.mongo.read_models import promote_read_models as promote_mongo

    promote_mongo(_mongodb_uri(settings), settings.mongodb_database, prefix=label)


def _quota(settings: Settings) -> QuotaGate:
    if settings.document_store == "sqlite":
        from infrastructure.sqlite.quota import SQLiteQuotaGate

        return SQLiteQuotaGate(settings.data_dir / "quota.db")
    from infrastructure.mongo.quota import MongoQuotaGate

    return MongoQuotaGate(_mongodb_uri(settings), settings.mongodb_database)


def _accounts(settings: Settings) -> AccountStore:
    if settings.document_store == "sqlite":
        from infrastructure.sqlite.accounts import SQLiteAccountStore

        return SQLiteAccountStore(settings.data_dir / "accounts.db")
    from infrastructure.mongo.accounts import MongoAccountStore

    return MongoAccountStore(_mongodb_uri(settings), settings.mongodb_database)


def _rate_limiter(settings: Settings) -> RateLimiter:
    if settings.document_store == "sqlite":
        from infrastructure.sqlite.rate_limits import SQLiteRateLimiter

        return SQLiteRateLimiter(settings.data_dir / "ratelimits.db")
    from infrastructure.mongo.rate_limits import MongoRateLimiter

    return MongoRateLimiter(_mongodb_uri(settings), settings.mongodb_database)


def _position_store(settings: Settings) -> PositionStore:
    if settings.event_store == "sqlite":
        from infrastructure.sqlite.positions import SQLitePositionStore

        return SQLitePositionStore(settings.data_dir / "relay.db")
    from infrastructure.postgres.positions import PostgresPositionStore

    assert settings.postgres_dsn is not None
    return PostgresPositionStore(settings.postgres_dsn)


def _transport(settings: Settings, faults: FaultPolicy) -> MessageTransport:
    if settings.transport == "inprocess":
        from infrastructure.inprocess.transport import InProcessTransport

        return InProcessTransport(settings.delivery_limit)
    if not settings.rabbitmq_url:
        raise ConfigurationError("BULK_TRANSPORT=rabbitmq needs BULK_RABBITMQ_URL")
    from infrastructure.rabbitmq.transport import RabbitMQTransport

    return RabbitMQTransport(
        settings.rabbitmq_url, settings.delivery_limit, settings.rabbitmq_prefetch, episodes=faults.episodes
    )


def single_active_lock(settings: Settings, name: str) -> SingleActiveLock:
    """The lock that lets one relay (or projector) of several be active at a time."""
    if settings.event_store != "postgres" or not settings.postgres_dsn:
        raise ConfigurationError("a single-active lock needs BULK_EVENT_STORE=postgres and BULK_POSTGRES_DSN")
    from infrastructure.postgres.positions import SingleActiveLock

    return SingleActiveLock(settings.postgres_dsn, name)
