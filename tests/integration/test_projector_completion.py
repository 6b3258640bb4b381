"""The projector completes an action even when completing it failed the first time:
a store that fails between a projected batch and its completion (the batch is
stored, so the next step reads on from after it), or a projector killed there, must
never leave an action PROCESSING for good."""

from __future__ import annotations

import sqlite3
import uuid

import pytest

from domain.bulk_action import BulkAction, BulkChunk
from infrastructure.bootstrap import Container

pytestmark = pytest.mark.integration


def _processed_action(container: Container) -> str:
    """An action whose one chunk has its outcomes stored: ready to complete."""
    action = BulkAction.submit(uuid.uuid4(), "acc", "contact", "insert", None, {"kind": "inline"}, 10, 2)
    container.events.create_action(action)
    records = [{"row": 1, "line": 2, "data": {"email": "a@x.org"}}, {"row": 2, "line": 3, "data": {"email": "b"}}]
    container.events.store_chunks([BulkChunk.queue(action.id, 0, 1, records)])
    action.mark_input_queued(2, 1)
    container.events.save_action(action)
    container.processor().process(action.id, 0)
    return str(action.id)


def _status(container: Container, action_id: str) -> str:
    container.projector(completing=False).catch_up()  # project the Completed event, if any
    view = container.read_models.get_action(action_id)
    assert view is not None
    return view.status


def test_an_action_whose_completion_met_a_fault_is_completed_at_the_next_step(container: Container) -> None:
    action_id = _processed_action(container)
    complete = container.completer().complete_if_done
    calls = []

    def store_down_once(action: uuid.UUID) -> bool:
        calls.append(action)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        return complete(action)

    projector = container.projector()
    projector.complete_if_done = store_down_once
    with pytest.raises(sqlite3.OperationalError):
        projector.run_once()  # the batch is stored; completing it fails
    projector.run_once()  # no outcome left to project, and yet:
    assert calls == [uuid.UUID(action_id)] * 2
    assert _status(container, action_id) == "COMPLETED"


def test_a_new_projector_completes_an_action_a_previous_one_left_processing(container: Container) -> None:
    action_id = _processed_action(container)
    container.projector(completing=False).catch_up()  # as if it died before completing
    assert _status(container, action_id) == "PROCESSING"
    container.projector().run_once()
    assert _status(container, action_id) == "COMPLETED"


def test_the_projector_reads_past_chunk_inputs_without_projecting_them(container: Container) -> None:
    """A ChunkQueued (a chunk's whole input) is not read by the projector, yet its
    position moves past it: a log that ends with queued chunks is caught up with."""
    action_id = _processed_action(container)
    more = [{"row": 3, "line": 4, "data": {"email": "c@x.org"}}]
    container.events.store_chunks([BulkChunk.queue(uuid.UUID(action_id), 1, 3, more)])  # the log's last event
    projector = container.projector(completing=False)
    read: list[list[type]] = []
    follow = container.events.follow

    def recording_follow(*args: object, **kwargs: object) -> object:
        found = follow(*args, **kwargs)  # type: ignore[arg-type]
        read.append([type(event) for _, event in found])
        return found

    container.events.follow = recording_follow  # type: ignore[method-assign]
    projector.catch_up()
    assert read and all(BulkChunk.ChunkQueued not in kinds for kinds in read)
    assert BulkChunk.RecordSucceeded in read[0] and BulkChunk.RecordFailed in read[0]
    assert container.read_models.position(projector.name) == container.events.head()
    assert projector.run_once() == 0
    view = container.read_models.get_action(action_id)
    assert view is not None and (view.succeeded, view.failed) == (1, 1)
