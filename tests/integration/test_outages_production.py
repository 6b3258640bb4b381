"""Outages on the production stack: PostgreSQL, MongoDB or RabbitMQ taken away for
longer than any retry budget that would give up, in the middle of an import, while a
relay, a projector and two workers run as real processes.

The shared servers keep running (other test runs use them): each test puts a TCP
proxy of its own (``tests/integration/tcp_proxy.py``) between the processes and one
server, and cuts it. An outage is the infrastructure's fault, never a record's: once
the server is back, the action ends COMPLETED with exactly the counts of a clean run,
one outcome event per record, no ``system_error``, ``verify`` clean, no process
crashed, and each process said so in a few lines (not a traceback per record).
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from pymongo import MongoClient

from infrastructure.files.sample import SampleCounts, write_contacts_csv
from infrastructure.sqlite.entities import SQLiteEntityStore
from tests.conftest import require_server
from tests.e2e.cli import import_args
from tests.integration.production_stack import (
    BULKACTIONS,
    REPO,
    ProductionStack,
    postgres_error,
    rabbitmq_error,
)
from tests.integration.tcp_proxy import TcpProxy, proxy_for, through
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROWS = 20_000
ACCOUNT = "default"  # the account `bulkactions import` uses when none is named
# Longer than every budget that used to give up: pika's connection attempts, the
# publisher's retries, a PostgreSQL position store's one reconnect, pymongo's server
# selection (10 s here).
OUTAGE_SECONDS = 15.0
# Lines a process may write about one outage: when it starts and when it is over, per
# place that waited (a worker's consumers, its stores, a follower's lock), not per try.
MAX_LOG_LINES = 12
PROCESSES = ("relay", "projector", "worker-0", "worker-1")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[ProductionStack]:
    for name, problem in (("PostgreSQL", postgres_error()), ("RabbitMQ", rabbitmq_error())):
        if problem:
            require_server(name, problem)
    # A delivery limit of 1: a single delivery counted because of the outage would
    # dead-letter its chunk, so the test sees it. A prefetch of 2: each consumer holds a
    # chunk it has not started yet when the outage comes.
    with ProductionStack(tmp_path, delivery_limit=1, prefetch=2) as running:
        yield running


def _start(stack: ProductionStack) -> tuple[subprocess.Popen[bytes], SampleCounts]:
    path = stack.data_dir / "contacts.csv"
    counts = write_contacts_csv(path, ROWS)
    for name in PROCESSES:
        stack.start(name, name.split("-")[0])
    stderr = (stack.logs / "import.log").open("ab")
    importing = subprocess.Popen(
        [*BULKACTIONS, *import_args(path)], cwd=REPO, env=stack.env(), stdout=subprocess.PIPE, stderr=stderr
    )
    return importing, counts


def _outage(stack: ProductionStack, proxy: TcpProxy, progress: Callable[[], int]) -> None:
    """Cut the proxy once the import is well under way, keep it cut for
    ``OUTAGE_SECONDS`` (a duration, not a wait for work), then restore it."""
    wait_for(lambda: progress() >= 2_000, 150, "the import to be under way")
    proxy.cut()
    cut_at, done_at_cut = time.monotonic(), progress()
    assert done_at_cut < ROWS, "the import ended before the outage: make it longer"
    time.sleep(OUTAGE_SECONDS)
    assert stack.stored_outcomes() < ROWS, "the outage did not stop the work"
    proxy.restore()
    assert time.monotonic() - cut_at >= OUTAGE_SECONDS


def _summary(importing: subprocess.Popen[bytes], stack: ProductionStack) -> dict[str, Any]:
    out, _ = importing.communicate(timeout=180)
    assert importing.returncode == 0, stack.log_text("import")[-3000:]
    summary: dict[str, Any] = orjson.loads(out.splitlines()[-1])
    return summary


def _assert_as_a_clean_run(
    stack: ProductionStack, summary: dict[str, Any], counts: SampleCounts, entities: Callable[[], int]
) -> None:
    assert (summary["status"], summary["total"], summary["discrepancy"]) == ("COMPLETED", ROWS, None)
    assert (summary["succeeded"], summary["failed"], summary["skipped"]) == (
        counts.valid,
        counts.invalid,
        counts.duplicates,
    )
    assert stack.stored_outcomes() == ROWS  # exactly one outcome event per record
    assert entities() == counts.valid  # one entity per success, none twice
    failed = stack.run("logs", summary["action_id"], "--outcome", "failed")
    assert failed.returncode == 0, failed.stderr
    codes = {e["code"] for line in failed.stdout.splitlines() for e in orjson.loads(line)["errors"]}
    assert "system_error" not in codes
    verify = stack.run("verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def _assert_every_process_rode_it_out(stack: ProductionStack) -> None:
    """Still running (none crashed or needed a restart), and a few lines each about it."""
    crashed = {name: stack.processes[name].poll() for name in PROCESSES if stack.processes[name].poll() is not None}
    assert not crashed, {name: stack.log_text(name)[-2000:] for name in crashed}
    for name in (*PROCESSES, "import"):
        text = stack.log_text(name)
        assert "system_error" not in text, text[-3000:]
        assert "Traceback" not in text, text[-3000:]
        assert len(text.splitlines()) <= MAX_LOG_LINES, f"{name} wrote too much:\n{text[-3000:]}"
    codes = {name: stack.kill(name, signal.SIGTERM) for name in PROCESSES}
    assert codes == dict.fromkeys(PROCESSES, 0)


def _sqlite_entities(stack: ProductionStack) -> Callable[[], int]:
    def count() -> int:
        store = SQLiteEntityStore(stack.data_dir / "entities.db")
        try:
            return store.count(ACCOUNT, "contact")
        finally:
            store.close()

    return count


def test_postgresql_down_mid_import_is_waited_out_and_the_counts_are_those_of_a_clean_run(
    stack: ProductionStack,
) -> None:
    with proxy_for(stack.dsn) as proxy:
        stack.overrides["BULK_POSTGRES_DSN"] = through(stack.dsn, proxy)
        importing, counts = _start(stack)
        _outage(stack, proxy, stack.stored_outcomes)
        summary = _summary(importing, stack)
        _assert_as_a_clean_run(stack, summary, counts, _sqlite_entities(stack))
        _assert_every_process_rode_it_out(stack)


def test_mongodb_down_mid_import_is_waited_out_and_the_counts_are_those_of_a_clean_run(
    stack: ProductionStack, database: tuple[str, str]
) -> None:
    uri, name = database
    with proxy_for(uri) as proxy:
        stack.overrides.update(
            BULK_DOCUMENT_STORE="mongodb", BULK_MONGODB_URI=through(uri, proxy), BULK_MONGODB_DATABASE=name
        )
        client: MongoClient[dict[str, Any]] = MongoClient(uri)
        try:
            importing, counts = _start(stack)
            _outage(stack, proxy, stack.stored_outcomes)
            summary = _summary(importing, stack)

            def entities() -> int:
                return client[name]["entities"].count_documents({"entity_type": "contact"})

            _assert_as_a_clean_run(stack, summary, counts, entities)
            _assert_every_process_rode_it_out(stack)
        finally:
            client.close()


def test_rabbitmq_down_mid_import_is_waited_out_and_the_counts_are_those_of_a_clean_run(
    stack: ProductionStack,
) -> None:
    with proxy_for(stack.amqp_url) as proxy:
        stack.overrides["BULK_RABBITMQ_URL"] = through(stack.amqp_url, proxy)
        importing, counts = _start(stack)
        _outage(stack, proxy, stack.stored_outcomes)
        summary = _summary(importing, stack)
        _assert_as_a_clean_run(stack, summary, counts, _sqlite_entities(stack))
        _assert_every_process_rode_it_out(stack)
