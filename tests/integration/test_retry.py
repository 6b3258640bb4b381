"""Retrying failed rows through the use cases on the embedded adapters: a retry
interrupted before its input was stored is stored again from its file, linked."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

import pytest

from application.ports.quotas import QuotaLimits
from application.submission import SubmitCommand, checked_command
from domain.bulk_action import BulkChunk
from infrastructure.bootstrap import Container
from infrastructure.files.readers import FileSource

pytestmark = pytest.mark.integration
LIMITS = QuotaLimits(1_000_000, 100)


def _finished(container: Container, action_id: UUID) -> UUID:
    for chunk_no in range(container.events.get_action(action_id).chunk_count or 0):
        container.processor().process(action_id, chunk_no)
    assert container.completer().complete_if_done(action_id)
    return action_id


def test_an_interrupted_retry_is_stored_again_from_its_file_with_each_record_linked(
    container: Container, tmp_path: Path
) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"email": e}) + "\n" for e in ["a@x.com", "bad", "c@x.com", "worse"]))
    source = FileSource(path)
    parent, _ = container.services.submission.create(
        checked_command(SubmitCommand("acme", "contact", "insert", chunk_size=2)), source, source.scan()
    )
    container.services.submission.store_input(parent, source)
    _finished(container, parent)
    fixed = tmp_path / "fixed.csv"
    fixed.write_text("row,line,outcome,email,other_input\n4,4,failed,d@x.com,\n2,2,failed,b@x.com,\n")

    retry_id, _ = container.services.retrying.start(None, parent, str(fixed), None, LIMITS, None)
    # Interrupted here: nothing of its input stored. Recovery finds it and its file.
    pending = container.services.recovery.pending_input(retry_id)
    assert pending is not None and pending.retry
    assert container.services.submission.store_pending(pending) == 2

    [queued] = [e for e in container.events.chunk_events(retry_id, 0) if isinstance(e, BulkChunk.ChunkQueued)]
    assert queued.records == [
        {"row": 1, "line": 2, "data": {"email": "d@x.com"}, "retry_of_row": 4},
        {"row": 2, "line": 3, "data": {"email": "b@x.com"}, "retry_of_row": 2},
    ]
    _finished(container, retry_id)
    retry, original = container.events.get_action(retry_id), container.events.get_action(parent)
    assert (retry.retry_of, original.retried_by, retry.action_type, retry.chunk_size) == (parent, retry_id, "insert", 2)
    assert container.entities.count("acme", "contact") == 4
