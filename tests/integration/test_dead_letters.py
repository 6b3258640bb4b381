"""A dead-lettered chunk is a suspect, not a verdict: the broker also counts deliveries
that a dropped connection returned. Before its records are failed it is processed once
more, alone, in a child process (``api/chunk_trial.py``); only a chunk that crashes
that child (or fails on its own) is failed as poison."""

from __future__ import annotations

import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest

from api.chunk_trial import SubprocessChunkTrial
from application.chunk_processing import ChunkProcessor
from application.event_store import BulkActionLog
from application.faults import FaultPolicy, StoreUnavailableError
from application.relay import chunk_message
from application.worker import ChunkWorker
from domain.bulk_action import BulkAction, BulkChunk
from infrastructure.bootstrap import SystemClock, event_store_env, fault_policy
from infrastructure.inprocess.transport import InProcessTransport
from infrastructure.settings import Settings
from infrastructure.sqlite.entities import SQLiteEntityStore

pytestmark = pytest.mark.integration

Verdict = Literal["processed", "unavailable", "crashed"]
# The outcomes of the chunk below, processed: row 1 is new, row 2 has a bad email.
SUCCEEDED, INVALID = ("RecordSucceeded", []), ("RecordFailed", ["value_error"])


def _records() -> list[dict[str, object]]:
    return [
        {"row": 1, "line": 2, "data": {"email": "a@x.org"}},
        {"row": 2, "line": 3, "data": {"email": "not an email"}},
    ]


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Embedded stores, and the broker settings a ``worker`` process needs (the trial
    never connects to the broker: it only processes the chunk)."""
    for name, value in {
        "BULK_EVENT_STORE": "sqlite",
        "BULK_DOCUMENT_STORE": "sqlite",
        "BULK_TRANSPORT": "rabbitmq",
        "BULK_RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:1/%2F",
    }.items():
        monkeypatch.setenv(name, value)
    return Settings(data_dir=tmp_path)


@pytest.fixture
def events(settings: Settings) -> Iterator[BulkActionLog]:
    log = BulkActionLog(env=event_store_env(settings))
    yield log
    log.close()


def _queued_action(events: BulkActionLog) -> uuid.UUID:
    action = BulkAction.submit(uuid.uuid4(), "acc", "contact", "insert", None, {"kind": "inline"}, 10, 1)
    events.create_action(action)
    events.store_chunks([BulkChunk.queue(action.id, 0, 1, _records())])
    return action.id


def _outcomes(events: BulkActionLog, action_id: uuid.UUID) -> list[tuple[str, list[str]]]:
    found = []
    for event in events.chunk_events(action_id, 0)[1:-1]:
        codes = [e["code"] for e in getattr(event, "errors", None) or []]
        found.append((type(event).__name__, codes))
    return found


class StubTrial:
    """The trial port with a chosen verdict; "processed" really processes the chunk."""

    def __init__(self, verdict: Verdict, processor: ChunkProcessor) -> None:
        self.verdict, self.processor, self.tried = verdict, processor, 0

    def try_alone(self, action_id: str, chunk_no: int) -> Verdict:
        self.tried += 1
        if self.verdict == "processed":
            self.processor.process(uuid.UUID(action_id), chunk_no)
        return self.verdict


def _worker(settings: Settings, events: BulkActionLog, verdict: Verdict) -> tuple[ChunkWorker, StubTrial]:
    entities = SQLiteEntityStore(settings.data_dir / "entities.db")
    faults = FaultPolicy(fault_policy(settings).is_infrastructure, first_delay=0.01, max_delay=0.01)
    processor = ChunkProcessor(events, entities, SystemClock(), faults)
    trial = StubTrial(verdict, processor)
    return ChunkWorker(processor, InProcessTransport(), trial), trial


def test_a_dead_lettered_chunk_that_processes_alone_gets_its_real_outcomes(
    settings: Settings, events: BulkActionLog
) -> None:
    action_id = _queued_action(events)
    worker, trial = _worker(settings, events, "processed")
    worker.dead_letter(chunk_message(str(action_id), 0))
    assert trial.tried == 1
    assert _outcomes(events, action_id) == [SUCCEEDED, INVALID]


def test_a_dead_lettered_chunk_that_crashes_alone_is_failed_with_a_system_error(
    settings: Settings, events: BulkActionLog
) -> None:
    action_id = _queued_action(events)
    worker, _ = _worker(settings, events, "crashed")
    worker.dead_letter(chunk_message(str(action_id), 0))
    assert _outcomes(events, action_id) == [("RecordFailed", ["system_error"]), ("RecordFailed", ["system_error"])]


def test_a_dead_lettered_chunk_whose_trial_meets_a_fault_is_given_back_and_nothing_is_recorded(
    settings: Settings, events: BulkActionLog
) -> None:
    action_id = _queued_action(events)
    worker, _ = _worker(settings, events, "unavailable")
    with pytest.raises(StoreUnavailableError):
        worker.dead_letter(chunk_message(str(action_id), 0))
    assert events.chunk_summary(action_id, 0) is None


def test_a_dead_lettered_chunk_already_done_is_neither_tried_nor_failed(
    settings: Settings, events: BulkActionLog
) -> None:
    action_id = _queued_action(events)
    worker, trial = _worker(settings, events, "crashed")
    worker.processor.process(action_id, 0)
    worker.dead_letter(chunk_message(str(action_id), 0))
    assert trial.tried == 0
    assert _outcomes(events, action_id) == [SUCCEEDED, INVALID]


def test_the_trial_child_processes_the_chunk_and_says_so(settings: Settings, events: BulkActionLog) -> None:
    action_id = _queued_action(events)
    assert SubprocessChunkTrial(settings).try_alone(str(action_id), 0) == "processed"
    assert _outcomes(events, action_id) == [SUCCEEDED, INVALID]


def test_the_trial_child_of_a_chunk_that_crashes_its_process_says_crashed(
    settings: Settings, events: BulkActionLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    action_id = _queued_action(events)
    faulty = [sys.executable, "-m", "tests.integration.faulty_processes", "crash-on-chunk:0"]
    monkeypatch.setattr(SubprocessChunkTrial, "program", faulty)
    assert SubprocessChunkTrial(settings).try_alone(str(action_id), 0) == "crashed"
    assert events.chunk_summary(action_id, 0) is None


def test_the_trial_child_says_unavailable_when_its_event_store_cannot_be_reached(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("BULK_EVENT_STORE", "postgres")
    monkeypatch.setenv("BULK_POSTGRES_DSN", f"postgresql://postgres@127.0.0.1:{port}/test")
    assert SubprocessChunkTrial(Settings(data_dir=settings.data_dir)).try_alone(str(uuid.uuid4()), 0) == "unavailable"
