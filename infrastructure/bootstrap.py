"""The composition root: the one place that picks adapters from ``Settings``.

One backend per concern, chosen once by name (as the event store library picks its
persistence by ``PERSISTENCE_MODULE``): the event storage (``BULK_EVENT_STORE``), the
document stores (``BULK_DOCUMENT_STORE``: entities, read models, quota, accounts,
request counts) and the transport (``BULK_TRANSPORT``). Each backend is one class or
module in its technology's package; nothing here asks which one it got.

``bootstrap`` builds the adapters and, from them, the application services that the
entrypoints use (``ApplicationServices``); nothing connects at import time, and
``Container.close`` releases everything.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from application.accounts import Accounts, AccountStore, FallbackRateLimiter, RateLimiter
from application.audit import EntityAudits
from application.chunk_processing import ChunkProcessor
from application.completion import ActionCompleter, Cancellation
from application.event_store import BulkActionLog
from application.faults import FaultClassifier, FaultPolicy, any_of, is_transient_os_error
from application.migration import EntityOwnerMigration
from application.monitoring import Followers, Monitoring
from application.ports.entities import EntityStore
from application.ports.inputs import InputFiles
from application.ports.messaging import ChunkTrial, MessageTransport, PositionStore
from application.ports.metrics import Metrics
from application.ports.quotas import QuotaGate, QuotaLimits
from application.ports.read_models import ReadModelSets, ReadModelStore
from application.ports.webhooks import WebhookDeliveries
from application.queries import ActionQueries
from application.recovery import ActionRecovery
from application.relay import CHUNKS_QUEUE, RELAY_NAME, Relay
from application.retry import Retrying
from application.reversion import Reversion
from application.submission import Submission
from application.webhook_outbox import WebhookConfig, WebhookOutbox, Webhooks
from application.webhooks import CallbackUrls, RetrySchedule
from application.worker import ChunkWorker
from infrastructure.events import faults as event_faults
from infrastructure.files.readers import FileInputs
from infrastructure.httpclient.webhooks import HttpClientSender, SocketResolver
from infrastructure.inprocess.rate_limits import InProcessRateLimiter
from infrastructure.settings import ConfigurationError, Settings
from infrastructure.sqlite import faults as sqlite_faults
from infrastructure.sqlite.key_index import SQLiteKeyIndex
from projections.actions import PROJECTION_NAME, READ_MODEL_VERSION
from projections.maintenance import ReadModelMaintenance
from projections.projector import Projector

if TYPE_CHECKING:
    from infrastructure.postgres.positions import SingleActiveLock

T = TypeVar("T")
__all__ = ["ConfigurationError", "bootstrap"]

# Each backend by the name its setting gives it: "module:attribute".
EVENT_STORAGES = {
    "sqlite": "infrastructure.sqlite.backend:SQLiteEventStorage",
    "postgres": "infrastructure.postgres.backend:PostgresEventStorage",
}
DOCUMENT_STORES = {
    "sqlite": "infrastructure.sqlite.backend:SQLiteDocumentStores",
    "mongodb": "infrastructure.mongo.backend:MongoDocumentStores",
}
TRANSPORTS = {"inprocess": "infrastructure.inprocess.backend", "rabbitmq": "infrastructure.rabbitmq.backend"}
MAPPER_TOPIC = "infrastructure.events.mapper:FastMapper"
# Metrics are recorded only where a process exposes them (prometheus-client is in the
# `api` extra, and the base install's CLI runs without it).
PROMETHEUS_METRICS = "infrastructure.prometheus.metrics:PrometheusMetrics"


class EventStorage(Protocol):
    """Where events are stored (the event store library's persistence environment),
    and where the relay remembers how far it has published."""

    is_transient: FaultClassifier

    def env(self) -> dict[str, str]: ...

    def holds_events(self) -> bool: ...

    def positions(self) -> PositionStore: ...


class DocumentStores(ReadModelSets, Protocol):
    """Entities, read models (live, and sets built aside), quota, accounts and request counts."""

    local: bool  # reads are quick enough to run on an API's event loop
    is_transient: FaultClassifier

    def entities(self) -> EntityStore: ...

    def quota(self) -> QuotaGate: ...

    def accounts(self) -> AccountStore: ...

    def rate_limiter(self) -> RateLimiter: ...

    def webhooks(self) -> WebhookDeliveries: ...

    def close(self) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class OutdatedStoreError(ConfigurationError):
    """A store written by an earlier release that must be migrated before use."""


class DataDirError(ConfigurationError):
    """The data dir is missing (for a command that only reads), or cannot be written."""


@dataclass(frozen=True)
class ApplicationServices:
    """What the entrypoints (CLI commands, HTTP routes) call: application services only."""

    submission: Submission
    queries: ActionQueries
    cancellation: Cancellation
    reversion: Reversion
    retrying: Retrying
    audits: EntityAudits
    recovery: ActionRecovery
    accounts: Accounts
    maintenance: ReadModelMaintenance
    migration: EntityOwnerMigration
    webhooks: Webhooks
    files: InputFiles
    faults: FaultPolicy
    # Bring the read models up to the event log now (and complete what is done).
    catch_up: Callable[[], int]
    # Schedule the webhooks of actions finished since last time, make the attempts due.
    send_webhooks: Callable[[], int]
    # The document stores are local files: their reads may run on an event loop.
    local_stores: bool
    # Lags, statuses, queue depths and reachability (metrics and /readyz).
    monitoring: Monitoring


@dataclass
class Container:
    """Every adapter, and the services and processes built from them."""

    settings: Settings
    events: BulkActionLog
    documents: DocumentStores
    entities: EntityStore
    read_models: ReadModelStore
    transport: MessageTransport
    positions: PositionStore
    quota: QuotaGate
    clock: SystemClock
    accounts: AccountStore
    rate_limiter: RateLimiter
    faults: FaultPolicy
    webhook_deliveries: WebhookDeliveries
    metrics: Metrics | None = None  # None: nothing recorded (see PROMETHEUS_METRICS)

    def __post_init__(self) -> None:
        self.services = self._services()

    @property
    def limits(self) -> QuotaLimits:
        return QuotaLimits(self.settings.records_per_day, self.settings.max_active_actions)

    def _services(self) -> ApplicationServices:
        files = FileInputs()
        scratch = self.settings.data_dir
        queries = ActionQueries(self.read_models, self.events)
        completer = self.completer()
        webhooks = Webhooks(self.webhook_deliveries, queries, self.accounts, self.callback_urls())
        return ApplicationServices(
            submission=Submission(
                self.events,
                self.quota,
                self.limits,
                self.clock,
                lambda: SQLiteKeyIndex(scratch),
                files,
                webhooks.check_callback,
            ),
            queries=queries,
            cancellation=Cancellation(completer, queries),
            reversion=self.reversion(),
            retrying=Retrying(self.events, self.quota, self.clock, files),
            audits=EntityAudits(self.events, self.read_models, self.entities),
            recovery=ActionRecovery(
                self.events,
                self.read_models,
                completer,
                self.transport,
                lambda: self.projector(completing=False).catch_up(),
            ),
            accounts=Accounts(self.accounts, self.clock, self.rate_limiter),
            maintenance=ReadModelMaintenance(self.events, self.read_models, self.documents, self.entities),
            migration=EntityOwnerMigration(self.events, self.entities),
            webhooks=webhooks,
            files=files,
            faults=self.faults,
            catch_up=lambda: self.projector().catch_up(),
            send_webhooks=lambda: self.webhook_outbox().run_once(),
            local_stores=self.documents.local,
            monitoring=Monitoring(
                self.events,
                self.read_models,
                self.positions,
                self.transport,
                Followers(PROJECTION_NAME, RELAY_NAME),
                _backend(TRANSPORTS, self.settings.transport).queues(CHUNKS_QUEUE),
            ),
        )

    def reversion(self) -> Reversion:
        return Reversion(self.events, self.quota, self.clock)

    def completer(self) -> ActionCompleter:
        return ActionCompleter(self.events, self.quota, self.entities)

    def processor(self) -> ChunkProcessor:
        return ChunkProcessor(self.events, self.entities, self.clock, self.faults, self.metrics)

    def worker(self, trial: ChunkTrial | None = None) -> ChunkWorker:
        return ChunkWorker(self.processor(), self.transport, trial)

    def relay(self) -> Relay:
        return Relay(self.events, self.transport, self.positions, self.faults)

    def projector(self, *, completing: bool = True) -> Projector:
        completer = self.completer().complete_if_done if completing else None
        return Projector(self.events, self.read_models, completer, faults=self.faults, metrics=self.metrics)

    def callback_urls(self) -> CallbackUrls:
        return CallbackUrls(SocketResolver(), self.settings.webhook_allow_private)

    def webhook_outbox(self) -> WebhookOutbox:
        s = self.settings
        schedule = RetrySchedule(
            s.webhook_backoff_base_seconds, s.webhook_backoff_max_seconds, s.webhook_retry_for_seconds
        )
        config = WebhookConfig(self.callback_urls(), schedule, s.webhook_timeout_seconds)
        return WebhookOutbox(
            self.events,
            self.positions,
            self.webhook_deliveries,
            self.accounts,
            HttpClientSender(),
            config,
            self.clock,
            self.faults,
        )

    def close(self) -> None:
        self.services.monitoring.close()
        for part in (
            self.transport,
            self.webhook_deliveries,
            self.entities,
            self.read_models,
            self.positions,
            self.quota,
            self.accounts,
            self.rate_limiter,
            self.documents,
        ):
            close = getattr(part, "close", None)
            if close is not None:
                close()
        self.events.close()


def input_files() -> InputFiles:
    """The input files reader, for a check made before any store is opened."""
    return FileInputs()


def _backend(table: dict[str, str], name: str) -> Any:
    module, _, attribute = table[name].partition(":")
    loaded = importlib.import_module(module)
    return getattr(loaded, attribute) if attribute else loaded


def _event_storage(settings: Settings) -> EventStorage:
    storage: EventStorage = _backend(EVENT_STORAGES, settings.event_store).from_settings(settings)
    return storage


def _document_stores(settings: Settings) -> DocumentStores:
    stores: DocumentStores = _backend(DOCUMENT_STORES, settings.document_store).from_settings(settings)
    return stores


def fault_policy(settings: Settings) -> FaultPolicy:
    """What counts as an infrastructure fault for the adapters ``settings`` pick."""
    # SQLite is always in use: the embedded stores, or scratch files (key index).
    classifiers: list[FaultClassifier] = [is_transient_os_error, sqlite_faults.is_transient, event_faults.is_transient]
    for table, name in (
        (EVENT_STORAGES, settings.event_store),
        (DOCUMENT_STORES, settings.document_store),
        (TRANSPORTS, settings.transport),
    ):
        classifiers.append(_backend(table, name).is_transient)
    return FaultPolicy(any_of(*classifiers))


def event_store_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing library's environment for the chosen event store."""
    return {"MAPPER_TOPIC": MAPPER_TOPIC, **_event_storage(settings).env()}


def bootstrap(settings: Settings | None = None, *, create: bool = True, migrating: bool = False) -> Container:
    """Every adapter, from ``settings``. Without ``create`` a data dir that holds no
    event store is refused (a mistyped ``--data-dir`` must not become a new, empty one).
    A store that needs ``bulkactions migrate`` is refused (``OutdatedStoreError``)
    unless ``migrating``."""
    settings = settings or Settings()
    storage = _event_storage(settings)
    _checked_data_dir(settings, storage, create=create)
    events = BulkActionLog(env={"MAPPER_TOPIC": MAPPER_TOPIC, **storage.env()})
    try:
        container = _container(settings, storage, events)
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
    if not migrating and container.read_models.schema_version() < READ_MODEL_VERSION:
        container.close()
        raise OutdatedStoreError(
            "the read models were written by an earlier release (no audit trail);"
            " run `bulkactions migrate` once (same --data-dir and settings) to rebuild them from the events"
        )
    return container


def _checked_data_dir(settings: Settings, storage: EventStorage, *, create: bool) -> None:
    data_dir = settings.data_dir
    if not create and not storage.holds_events():
        raise DataDirError(f"no bulk actions data in {data_dir}: check --data-dir (or BULK_DATA_DIR)")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(f"cannot create the data dir {data_dir}: {exc.strerror}") from None
    if not os.access(data_dir, os.W_OK):
        # SQLite needs to write even to read (WAL index, locks): refuse in one line.
        raise DataDirError(f"the data dir {data_dir} is read-only: bulkactions needs to write there")


def _container(settings: Settings, storage: EventStorage, events: BulkActionLog) -> Container:
    faults = fault_policy(settings)
    documents = _document_stores(settings)
    built: list[object] = [documents]

    def kept(part: T) -> T:
        built.append(part)
        return part

    try:
        return Container(
            settings=settings,
            events=events,
            documents=documents,
            entities=kept(documents.entities()),
            read_models=kept(documents.open()),
            transport=kept(_backend(TRANSPORTS, settings.transport).transport(settings, faults)),
            positions=kept(storage.positions()),
            quota=kept(documents.quota()),
            clock=SystemClock(),
            accounts=kept(documents.accounts()),
            rate_limiter=FallbackRateLimiter(kept(documents.rate_limiter()), InProcessRateLimiter(), faults),
            faults=faults,
            webhook_deliveries=kept(documents.webhooks()),
            metrics=_backend({"on": PROMETHEUS_METRICS}, "on")() if settings.metrics else None,
        )
    except BaseException:
        # A server that is down at start: close what was built so far (clients,
        # connections, their threads), the adapters first, before the caller tries again.
        for part in reversed(built):
            close = getattr(part, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()
        raise


def single_active_lock(settings: Settings, name: str) -> SingleActiveLock:
    """The lock that lets one relay (or projector) of several be active at a time."""
    if settings.event_store != "postgres" or not settings.postgres_dsn:
        raise ConfigurationError("a single-active lock needs BULK_EVENT_STORE=postgres and BULK_POSTGRES_DSN")
    from infrastructure.postgres.backend import PostgresEventStorage

    return PostgresEventStorage(settings).single_active_lock(name)
