"""Every Prometheus metric of the platform, defined here once, and how a process shows them.

Where each figure comes from (and why there):
- ``bulkactions_records_total`` and ``bulkactions_record_errors_total``: the projector,
  as the read model takes a batch of outcome events (``application/ports/metrics.py``:
  counted from stored events, so redelivery and resume never count twice);
- ``bulkactions_chunk_duration_seconds``: the worker whose delivery stored the chunk's
  outcomes (one sample per chunk, none for a duplicate delivery);
- ``bulkactions_queue_messages``: sampled from the transport every few seconds by the
  process that holds it (the in-process queue exists only in the embedded runtime);
- ``bulkactions_projection_lag_events``, ``bulkactions_relay_lag_events`` and
  ``bulkactions_actions``: read from the stores when scraped (``StateCollector``);
- ``bulkactions_http_requests_total`` and ``bulkactions_http_request_duration_seconds``:
  the API's middleware, by route template (``/v1/bulk-actions/{action_id}``), never the
  raw path, so ids do not become label values.

Multiprocess: ``serve`` on the embedded default runs the workers and the projector in
child processes; it sets ``PROMETHEUS_MULTIPROC_DIR`` (``multiprocess_dir``) before
this module is first imported anywhere, the children inherit it, and ``/metrics`` adds
up their files (``Exposition``). This module must therefore only be imported lazily
(the composition root loads it by name, the entrypoints inside functions).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from application.monitoring import Monitoring
from application.ports.metrics import OutcomeTally
from infrastructure.prometheus import MULTIPROC_ENV

log = logging.getLogger(__name__)
QUEUE_SAMPLE_SECONDS = 2.0

RECORDS = Counter(
    "bulkactions_records", "Records with a stored outcome, counted once each", ["entity", "action", "outcome"]
)
RECORD_ERRORS = Counter("bulkactions_record_errors", "Errors of failed records, by error code", ["entity", "code"])
CHUNK_DURATION = Histogram(
    "bulkactions_chunk_duration_seconds",
    "Time a worker took to process a chunk and store its outcomes",
    ["entity", "action"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
)
QUEUE_MESSAGES = Gauge(
    "bulkactions_queue_messages", "Messages waiting in a queue", ["queue"], multiprocess_mode="mostrecent"
)
HTTP_REQUESTS = Counter(
    "bulkactions_http_requests", "HTTP requests answered, by route template", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "bulkactions_http_request_duration_seconds",
    "HTTP request latency, by route template and status",
    ["method", "route", "status"],
)


class PrometheusMetrics:
    """The ``Metrics`` port, recorded into the metrics above."""

    def outcomes_projected(self, tally: OutcomeTally) -> None:
        for (entity, action, outcome), count in tally.records.items():
            RECORDS.labels(entity, action, outcome).inc(count)
        for (entity, code), count in tally.errors.items():
            RECORD_ERRORS.labels(entity, code).inc(count)

    def chunk_processed(self, entity: str, action: str, seconds: float) -> None:
        CHUNK_DURATION.labels(entity, action).observe(seconds)


def http_request(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_DURATION.labels(method, route, str(status)).observe(seconds)


class StateCollector(Collector):
    """Gauges read from the stores at scrape time. ``parts`` picks which: a process
    shows what it follows (the relay its lag, the projector its lag and the statuses).
    A store that cannot be read leaves its gauge out of this scrape (an absent series
    is what alerting on ``absent()`` expects), it does not fail the scrape."""

    PARTS = ("projection", "relay", "actions")
    NAMES = ("bulkactions_projection_lag_events", "bulkactions_relay_lag_events", "bulkactions_actions")

    def __init__(self, monitoring: Monitoring, parts: Iterable[str] = PARTS) -> None:
        self.monitoring, self.parts = monitoring, frozenset(parts)

    def collect(self) -> Iterable[Metric]:
        if "projection" in self.parts:
            yield from _gauge(
                "bulkactions_projection_lag_events",
                "Events the projector has yet to apply",
                lambda: {(): self.monitoring.projection_lag()},
            )
        if "relay" in self.parts:
            yield from _gauge(
                "bulkactions_relay_lag_events",
                "Events the relay has yet to look at",
                lambda: {(): self.monitoring.relay_lag()},
            )
        if "actions" in self.parts:
            yield from _gauge(
                "bulkactions_actions",
                "Bulk actions by status",
                lambda: {(s,): n for s, n in self.monitoring.actions_by_status().items()},
                ["status"],
            )

    def describe(self) -> Iterable[Metric]:
        return []  # unchecked names: collect() reads stores, which registering must not do


def _gauge(
    name: str, documentation: str, read: Callable[[], dict[tuple[str, ...], int]], labels: list[str] | None = None
) -> Iterable[Metric]:
    try:
        values = read()
    except Exception as exc:
        log.debug("metric %s not read: %s", name, exc)
        return
    family = GaugeMetricFamily(name, documentation, labels=labels or [])
    for label_values, value in values.items():
        family.add_metric(list(label_values), value)
    yield family


def sample_queues(monitoring: Monitoring, stop: threading.Event, every: float = QUEUE_SAMPLE_SECONDS) -> None:
    """Set the queue gauge from the transport until ``stop`` (run on a thread of its own)."""
    while not stop.is_set():
        try:
            for queue, depth in monitoring.queue_depths().items():
                QUEUE_MESSAGES.labels(queue).set(depth)
        except Exception as exc:  # a broker outage: the gauge keeps its last value
            log.debug("queue depths not sampled: %s", exc)
        stop.wait(every)


def start_queue_sampler(monitoring: Monitoring, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=sample_queues, args=(monitoring, stop), name="queue-sampler", daemon=True)
    thread.start()
    return thread


_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def exported_names() -> set[str]:
    """Every sample name the platform exposes (what a dashboard or an alert may query)."""
    names = set(StateCollector.NAMES)
    for metric in (RECORDS, RECORD_ERRORS, CHUNK_DURATION, QUEUE_MESSAGES, HTTP_REQUESTS, HTTP_DURATION):
        for family in metric.describe():
            names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return names


class _Default(Collector):
    """This process's own metrics (and the process_* / python_* ones)."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


class Exposition:
    """The registry a process serves: its own metrics, or, in multiprocess mode, those
    of every process writing to the directory; plus ``StateCollector`` if given."""

    def __init__(self, state: StateCollector | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        if os.environ.get(MULTIPROC_ENV):
            MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]
        else:
            self.registry.register(_Default())
        if state is not None:
            self.registry.register(state)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def serve(self, port: int, host: str = "0.0.0.0") -> tuple[int, Callable[[], None]]:
        """Serve ``/metrics`` on ``port`` (0: any free one) from a thread; returns the
        port it got and what stops it."""
        server, thread = start_http_server(port, host, registry=self.registry)

        def stop() -> None:
            server.shutdown()
            thread.join(timeout=5)

        return int(server.server_port), stop
