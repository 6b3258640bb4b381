"""Metrics and readiness on the production stack: relay, projector and worker as real
processes, each with ``--metrics-port``; an API-only ``serve`` whose ``/readyz`` names
the store or broker that a TCP proxy of the test's own has cut (the shared servers
keep running)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from application.relay import CHUNKS_QUEUE, chunk_message
from infrastructure.files.sample import write_contacts_csv
from infrastructure.rabbitmq.transport import RabbitMQTransport
from tests.conftest import require_server
from tests.e2e.cli import import_args
from tests.e2e.metrics import Samples, metrics_url, scrape, value
from tests.integration.production_stack import ProductionStack, postgres_error, rabbitmq_error
from tests.integration.tcp_proxy import proxy_for, through
from tests.mongo_server import fresh_database
from tests.waiting import served_url, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
CHUNK = 500


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[ProductionStack]:
    for name, problem in (("PostgreSQL", postgres_error()), ("RabbitMQ", rabbitmq_error())):
        if problem:
            require_server(name, problem)
    with ProductionStack(tmp_path) as running:
        yield running


def _metrics_of(stack: ProductionStack, name: str) -> str:
    url: str = wait_for(lambda: metrics_url(stack.log_text(name)), 60, f"the {name}'s metrics port")
    return url


def _import(stack: ProductionStack, rows: int) -> dict[str, int | str]:
    path = stack.data_dir / f"contacts-{uuid.uuid4().hex[:6]}.csv"
    write_contacts_csv(path, rows)
    done = stack.run(*import_args(path, "--chunk-size", str(CHUNK)))
    assert done.returncode == 0, done.stderr
    summary: dict[str, int | str] = orjson.loads(done.stdout.splitlines()[-1])
    assert summary["status"] == "COMPLETED"
    return summary


def _records(samples: Samples) -> tuple[float, float, float]:
    def of(outcome: str) -> float:
        return value(samples, "bulkactions_records_total", entity="contact", action="insert", outcome=outcome)

    return of("succeeded"), of("failed"), of("skipped")


def test_process_metrics_equal_the_counts_and_a_redelivered_chunk_is_not_counted_twice(
    stack: ProductionStack,
) -> None:
    for name in ("relay", "projector", "worker"):
        stack.start(name, name, "--metrics-port", "0")
    projector, worker, relay = (_metrics_of(stack, name) for name in ("projector", "worker", "relay"))
    first = _import(stack, 4000)  # 8 chunks
    expected = (first["succeeded"], first["failed"], first["skipped"])
    assert wait_for(lambda: _records(scrape(projector)) == expected, 30, "the records counted")
    samples = scrape(projector)
    assert value(samples, "bulkactions_actions", status="COMPLETED") == 1
    failed = stack.run("logs", str(first["action_id"]), "--outcome", "failed")
    codes = Counter(e["code"] for line in failed.stdout.splitlines() for e in orjson.loads(line)["errors"])
    counted = {dict(labels)["code"]: v for (n, labels), v in samples.items() if n == "bulkactions_record_errors_total"}
    assert counted == codes and sum(codes.values()) >= first["failed"]
    wait_for(lambda: value(scrape(projector), "bulkactions_projection_lag_events") == 0, 30, "no projection lag")
    wait_for(lambda: value(scrape(relay), "bulkactions_relay_lag_events") == 0, 30, "no relay lag")

    # Every chunk of the completed action delivered again, then a second action
    # behind them on the same queue (one consumer takes them in order).
    transport = RabbitMQTransport(stack.amqp_url)
    try:
        transport.publish(CHUNKS_QUEUE, [chunk_message(str(first["action_id"]), n) for n in range(8)])
    finally:
        transport.close()
    second = _import(stack, 500)  # 1 chunk
    expected = tuple(first[k] + second[k] for k in ("succeeded", "failed", "skipped"))  # type: ignore[operator]
    assert wait_for(lambda: _records(scrape(projector)) == expected, 30, "the second action counted")
    samples = scrape(worker)
    assert value(samples, "bulkactions_chunk_duration_seconds_count", entity="contact", action="insert") == 9
    wait_for(
        lambda: value(scrape(worker), "bulkactions_queue_messages", queue="bulk.chunks") == 0, 30, "an empty queue"
    )
    assert ("bulkactions_queue_messages", frozenset({("queue", "bulk.chunks.dead")})) in scrape(worker)


def test_readyz_names_the_store_or_broker_a_proxy_cut_off(
    stack: ProductionStack, request: pytest.FixtureRequest
) -> None:
    uri, database = fresh_database(request)
    with proxy_for(stack.dsn) as pg, proxy_for(stack.amqp_url) as mq, proxy_for(uri) as mongo:
        stack.overrides.update(
            BULK_POSTGRES_DSN=through(stack.dsn, pg),
            BULK_RABBITMQ_URL=through(stack.amqp_url, mq),
            BULK_DOCUMENT_STORE="mongodb",
            BULK_MONGODB_URI=through(uri, mongo),
            BULK_MONGODB_DATABASE=database,
        )
        stack.start("api", "serve", "--port", "0")
        base: str = wait_for(lambda: served_url(stack.log_text("api")), 60, "the API")

        def readiness() -> tuple[int, list[str]]:
            try:
                response = httpx.get(base + "/readyz", timeout=10)
            except httpx.HTTPError:
                return 0, []
            return response.status_code, response.json().get("missing", [])

        wait_for(lambda: readiness() == (200, []), 60, "the API to be ready")
        for proxy, name in ((pg, "event_store"), (mq, "broker"), (mongo, "document_store")):
            proxy.cut()
            wait_for(lambda n=name: readiness() == (503, [n]), 30, f"readyz to name {name}")  # type: ignore[misc]
            assert httpx.get(base + "/healthz", timeout=5).status_code == 200  # alive all along
            proxy.restore()
            wait_for(lambda: readiness() == (200, []), 60, f"readyz after {name} is back")
        # The API's own metrics: each refusal counted under its route and status, and
        # the gauges it reads from the stores.
        samples = scrape(base + "/metrics")
        assert value(samples, "bulkactions_http_requests_total", method="GET", route="/readyz", status="503") >= 3
        assert value(samples, "bulkactions_http_requests_total", method="GET", route="/readyz", status="200") >= 4
        assert value(samples, "bulkactions_actions", status="COMPLETED") == 0
        assert ("bulkactions_projection_lag_events", frozenset()) in samples
