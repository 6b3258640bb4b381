"""Reverting an action, through the use cases on the embedded adapters: what is
restored, what is removed, what was changed since, and that it happens once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from application.submission import SubmitCommand, checked_command
from domain.bulk_action import BulkChunk
from domain.errors import ActionNotFinishedError, AlreadyRevertedError
from infrastructure.bootstrap import Container
from infrastructure.files.readers import FileSource

pytestmark = pytest.mark.integration
ACCOUNT = "acme"


def _run(container: Container, tmp_path: Path, action: str, rows: list[dict[str, str]]) -> UUID:
    path = tmp_path / f"input-{len(list(tmp_path.glob('input-*')))}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    command = checked_command(SubmitCommand(ACCOUNT, "contact", action))
    source = FileSource(path)
    action_id, _ = container.services.submission.create(command, source, source.scan())
    container.services.submission.store_input(action_id, source)
    return _process(container, action_id)


def _process(container: Container, action_id: UUID) -> UUID:
    for chunk_no in range(container.events.get_action(action_id).chunk_count or 0):
        container.processor().process(action_id, chunk_no)
    assert container.completer().complete_if_done(action_id)
    return action_id


def _outcomes(container: Container, action_id: UUID) -> list[Any]:
    return [e for e in container.events.chunk_events(action_id, 0) if hasattr(e, "row")]


def _names(container: Container, inserted: UUID) -> dict[str, str | None]:
    found = {}
    for e in _outcomes(container, inserted):
        values = container.entities.get(ACCOUNT, "contact", e.entity_id)
        found[e.changes["email"][1]] = None if values is None else values.get("first_name")
    return found


def _revert(container: Container, original: UUID) -> UUID:
    revert_id = container.reversion().start(ACCOUNT, original, container.limits, {"kind": "test"})
    container.services.submission.store_input(revert_id, None)
    return _process(container, revert_id)


def test_a_revert_restores_what_is_unchanged_since_and_names_who_changed_the_rest(
    container: Container, tmp_path: Path
) -> None:
    people = [{"email": f"p{n}@x.com", "first_name": f"P{n}"} for n in range(4)]
    inserted = _run(container, tmp_path, "insert", people)
    update = _run(
        container,
        tmp_path,
        "update",
        [
            {"email": "p0@x.com", "first_name": "Zero"},
            {"email": "p1@x.com", "first_name": "One"},
            {"email": "p2@x.com", "first_name": "P2"},  # the same value: unchanged
            {"email": "nobody@x.com", "first_name": "X"},  # failed: not found
        ],
    )
    later = _run(container, tmp_path, "update", [{"email": "p1@x.com", "first_name": "Later"}])

    revert = _revert(container, update)

    outcomes = {e.row: e for e in _outcomes(container, revert)}
    assert (type(outcomes[1]).__name__, outcomes[1].op, outcomes[1].changes) == (
        "RecordSucceeded",
        "reverted",
        {"first_name": ["Zero", "P0"]},
    )
    assert outcomes[2].reason.startswith("changed_since") and str(later) in outcomes[2].reason
    assert outcomes[3].reason.startswith("nothing_to_revert") and "changed nothing" in outcomes[3].reason
    assert outcomes[4].reason.startswith("nothing_to_revert") and "failed" in outcomes[4].reason
    assert _names(container, inserted) == {"p0@x.com": "P0", "p1@x.com": "Later", "p2@x.com": "P2", "p3@x.com": "P3"}
    assert container.events.get_action(update).reverted_by == revert
    assert container.events.get_action(revert).reverts == update


def test_a_revert_of_an_insert_removes_what_is_as_inserted_and_frees_the_unique_values(
    container: Container, tmp_path: Path
) -> None:
    inserted = _run(container, tmp_path, "insert", [{"email": "a@x.com"}, {"email": "b@x.com"}])
    _run(container, tmp_path, "update", [{"email": "b@x.com", "first_name": "Bee"}])

    revert = _revert(container, inserted)

    ops = [(type(e).__name__, getattr(e, "op", None)) for e in _outcomes(container, revert)]
    assert ops == [("RecordSucceeded", "deleted"), ("RecordSkipped", None)]
    assert _names(container, inserted) == {"a@x.com": None, "b@x.com": "Bee"}
    again = _run(container, tmp_path, "insert", [{"email": "a@x.com"}])
    assert isinstance(_outcomes(container, again)[0], BulkChunk.RecordSucceeded)


def test_an_action_is_reverted_once_and_only_when_finished(container: Container, tmp_path: Path) -> None:
    inserted = _run(container, tmp_path, "insert", [{"email": "a@x.com"}])
    revert = _revert(container, inserted)
    with pytest.raises(AlreadyRevertedError, match=str(revert)):
        container.reversion().start(ACCOUNT, inserted, container.limits, None)

    path = tmp_path / "unfinished.jsonl"
    path.write_text('{"email": "u@x.com"}\n')
    source = FileSource(path)
    unfinished, _ = container.services.submission.create(
        checked_command(SubmitCommand(ACCOUNT, "contact", "insert")), source, source.scan()
    )
    with pytest.raises(ActionNotFinishedError):
        container.reversion().start(ACCOUNT, unfinished, container.limits, None)
