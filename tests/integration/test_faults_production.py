"""Faults on the production stack: real PostgreSQL, real RabbitMQ, and real
``bulkactions relay / projector / worker`` processes, killed and disturbed mid-run.

After every fault the import must still end COMPLETED with succeeded + failed +
skipped = total, exactly one outcome event and one log line per record, no
duplicate entity, and ``bulkactions verify`` clean.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from infrastructure.files.sample import SampleCounts, write_contacts_csv
from infrastructure.rabbitmq.transport import RabbitMQTransport
from infrastructure.sqlite.entities import SQLiteEntityStore
from tests.conftest import require_server
from tests.e2e.cli import import_args
from tests.integration.production_stack import (
    BULKACTIONS,
    REPO,
    ProductionStack,
    postgres_error,
    rabbitmq_error,
    rabbitmqctl,
)
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
# The account `bulkactions import` uses when none is named.
ACCOUNT = "default"

FAULTY = [sys.executable, "-m", "tests.integration.faulty_processes"]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[ProductionStack]:
    for name, problem in (("PostgreSQL", postgres_error()), ("RabbitMQ", rabbitmq_error())):
        if problem:
            require_server(name, problem)
    with ProductionStack(tmp_path, delivery_limit=3, prefetch=1) as running:
        yield running


def _sample(stack: ProductionStack, rows: int) -> tuple[Path, SampleCounts]:
    path = stack.data_dir / f"contacts-{rows}.csv"
    return path, write_contacts_csv(path, rows)


def _start_import(stack: ProductionStack, path: Path) -> subprocess.Popen[bytes]:
    command = [*BULKACTIONS, *import_args(path)]
    stderr = (stack.logs / "import.log").open("ab")
    return subprocess.Popen(command, cwd=REPO, env=stack.env(), stdout=subprocess.PIPE, stderr=stderr)


def _finished_import(process: subprocess.Popen[bytes], timeout: float = 150) -> dict[str, Any]:
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, out.decode()
    lines = [orjson.loads(line) for line in out.splitlines() if line.strip()]
    summary: dict[str, Any] = lines[-1]
    return summary


def _start_services(stack: ProductionStack, workers: int = 2) -> None:
    stack.start("relay", "relay")
    stack.start("projector", "projector")
    for n in range(workers):
        stack.start(f"worker-{n}", "worker")


def _assert_consistent(stack: ProductionStack, summary: dict[str, Any], rows: int) -> None:
    assert summary["status"] == "COMPLETED"
    assert summary["discrepancy"] is None
    assert summary["total"] == rows
    assert summary["succeeded"] + summary["failed"] + summary["skipped"] == rows
    # Exactly one outcome event per record in the event store.
    assert stack.stored_outcomes() == rows
    # One entity per success, none twice.
    entities = SQLiteEntityStore(stack.data_dir / "entities.db")
    try:
        assert entities.count(ACCOUNT, "contact") == summary["succeeded"]
    finally:
        entities.close()
    logs = stack.run("logs", summary["action_id"])
    assert logs.returncode == 0, logs.stderr
    log_rows = [orjson.loads(line)["row"] for line in logs.stdout.splitlines()]
    assert sorted(log_rows) == list(range(1, rows + 1))  # one log line per row, none twice
    verify = stack.run("verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def _assert_every_process_stops_cleanly_on_sigterm(stack: ProductionStack) -> None:
    codes = {name: stack.kill(name, signal.SIGTERM) for name in list(stack.processes)}
    assert codes == dict.fromkeys(codes, 0)


def _assert_expected_counts(summary: dict[str, Any], counts: SampleCounts) -> None:
    assert (summary["succeeded"], summary["failed"], summary["skipped"]) == (
        counts.valid,
        counts.invalid,
        counts.duplicates,
    )


def test_a_worker_sigkilled_mid_chunk_leaves_nothing_half_done(stack: ProductionStack) -> None:
    path, counts = _sample(stack, 20_000)
    marker = stack.data_dir / "paused"
    stack.start("relay", "relay")
    stack.start("projector", "projector")
    stack.start("doomed", "worker", module=[*FAULTY, "pause-before-outcomes"], BULK_FAULT_MARKER=str(marker))
    importing = _start_import(stack, path)
    # The doomed worker has written a chunk's entities and not yet its outcome events.
    wait_for(marker.exists, 60, "the worker to be in the middle of a chunk")
    assert stack.kill("doomed", signal.SIGKILL) == -signal.SIGKILL
    stack.start("worker-0", "worker")
    stack.start("worker-1", "worker")
    summary = _finished_import(importing)
    _assert_consistent(stack, summary, 20_000)
    _assert_expected_counts(summary, counts)


def test_every_message_delivered_twice_is_counted_once(stack: ProductionStack) -> None:
    path, counts = _sample(stack, 10_000)
    stack.start("relay", "relay")
    stack.start("projector", "projector")
    for n in range(2):
        stack.start(f"worker-{n}", "worker", module=[*FAULTY, "deliver-twice"])
    summary = _finished_import(_start_import(stack, path))
    _assert_consistent(stack, summary, 10_000)
    _assert_expected_counts(summary, counts)
    # Each of the 10 chunks really was handled twice: refused once, then redelivered.
    refusals = sum(stack.log_text(f"worker-{n}").count("refuse the first delivery") for n in range(2))
    assert refusals >= 10
    _assert_every_process_stops_cleanly_on_sigterm(stack)


def test_the_broker_dropping_every_connection_mid_run_loses_and_doubles_nothing(stack: ProductionStack) -> None:
    path, counts = _sample(stack, 60_000)
    _start_services(stack)
    importing = _start_import(stack, path)
    wait_for(lambda: stack.stored_outcomes() > 0, 150, "outcomes to start arriving")
    rabbitmqctl("close_all_connections", "--vhost", stack.vhost, "fault test: connection dropped")
    assert stack.stored_outcomes() < 60_000, "the run ended before the drop: make it longer"
    summary = _finished_import(importing)
    _assert_consistent(stack, summary, 60_000)
    _assert_expected_counts(summary, counts)
    workers_log = stack.log_text("worker-0") + stack.log_text("worker-1")
    assert "consuming bulk.chunks: working again" in workers_log  # the drop really hit the consumers
    _assert_every_process_stops_cleanly_on_sigterm(stack)


def test_a_poison_chunk_is_dead_lettered_and_its_records_fail_with_a_system_error(
    stack: ProductionStack,
) -> None:
    path, _ = _sample(stack, 10_000)
    poison = 4
    stack.start("relay", "relay")
    stack.start("projector", "projector")
    crashing = [*FAULTY, f"crash-on-chunk:{poison}"]
    for n in range(2):
        stack.start(f"worker-{n}", "worker", module=crashing)
    importing = _start_import(stack, path)
    crashes = 0
    # Play the supervisor: restart every worker the poison chunk kills.
    while importing.poll() is None:
        for n in range(2):
            name = f"worker-{n}"
            if stack.processes[name].poll() is not None:
                crashes += 1
                assert crashes <= 10, "the poison chunk was never dead-lettered"
                stack.kill(name)
                stack.start(name, "worker", module=crashing)
        try:
            importing.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            continue
    summary = _finished_import(importing)
    assert crashes == stack.delivery_limit  # one crash per allowed delivery
    _assert_consistent(stack, summary, 10_000)
    failed = stack.run("logs", summary["action_id"], "--outcome", "failed")
    poisoned = [orjson.loads(line) for line in failed.stdout.splitlines()]
    poisoned = [line for line in poisoned if poison * 1000 < line["row"] <= (poison + 1) * 1000]
    assert len(poisoned) == 1000
    assert all(e["code"] == "system_error" for line in poisoned for e in line["errors"])


@pytest.mark.parametrize("fault", ["relay-exit-before-publish", "relay-exit-after-publish"])
def test_a_relay_killed_between_store_and_publish_is_taken_over_without_loss(
    stack: ProductionStack, fault: str
) -> None:
    path, counts = _sample(stack, 10_000)
    marker = stack.data_dir / "relay-died"
    stack.start("projector", "projector")
    for n in range(2):
        stack.start(f"worker-{n}", "worker")
    # Two relays: the active one dies once at the fault; the standby takes over.
    env = {"BULK_FAULT_MARKER": str(marker)}
    stack.start("relay-a", "relay", "--standby-poll", "0.2", module=[*FAULTY, fault], **env)
    stack.start("relay-b", "relay", "--standby-poll", "0.2", module=[*FAULTY, fault], **env)
    summary = _finished_import(_start_import(stack, path))
    assert marker.exists()
    died = [name for name in ("relay-a", "relay-b") if stack.processes[name].poll() is not None]
    assert len(died) == 1
    _assert_consistent(stack, summary, 10_000)
    _assert_expected_counts(summary, counts)


def test_resume_republishes_chunks_whose_messages_were_lost(stack: ProductionStack) -> None:
    path, counts = _sample(stack, 20_000)
    stack.start("relay", "relay")
    stack.start("projector", "projector")
    importing = _start_import(stack, path)
    assert importing.stdout is not None
    action_id = orjson.loads(importing.stdout.readline())["action_id"]
    transport = RabbitMQTransport(stack.amqp_url)
    try:
        # No worker yet: every chunk message waits in the queue; then the CLI dies and
        # the messages are lost (purged), as after a broker without its disk.
        wait_for(lambda: transport.depth("bulk.chunks") == 20, 90, "all 20 chunk messages")
    finally:
        transport.close()
    importing.kill()
    importing.wait(timeout=30)
    rabbitmqctl("purge_queue", "-p", stack.vhost, "bulk.chunks")
    for n in range(2):
        stack.start(f"worker-{n}", "worker")
    resumed = stack.run("resume", action_id, "--json", timeout=150)
    assert resumed.returncode == 0, resumed.stderr
    summary = orjson.loads(resumed.stdout.splitlines()[-1])
    _assert_consistent(stack, summary, 20_000)
    _assert_expected_counts(summary, counts)


def test_a_standby_projector_takes_over_when_the_active_one_is_killed(stack: ProductionStack) -> None:
    path, counts = _sample(stack, 30_000)
    stack.start("relay", "relay")
    stack.start("projector-a", "projector", "--standby-poll", "0.2")
    wait_for(lambda: "active" in stack.log_text("projector-a"), 60, "projector-a to become active")
    stack.start("projector-b", "projector", "--standby-poll", "0.2")
    for n in range(2):
        stack.start(f"worker-{n}", "worker")
    importing = _start_import(stack, path)
    wait_for(lambda: stack.stored_outcomes() > 0, 120, "outcomes to start arriving")
    assert "active" not in stack.log_text("projector-b")  # standing by
    stack.kill("projector-a", signal.SIGKILL)
    summary = _finished_import(importing)
    assert "active" in stack.log_text("projector-b")
    _assert_consistent(stack, summary, 30_000)
    _assert_expected_counts(summary, counts)
