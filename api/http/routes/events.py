"""The audit trail: one record's events, and an action's whole history as NDJSON.

These are the deliberate exceptions to "queries come from read models": they read the
event store itself, so they show what was recorded, not a projection of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Path
from fastapi.responses import StreamingResponse

from api.http.deps import AccountDep, EventsDep
from api.http.problems import PROBLEM_RESPONSES, FaultTranslatingRoute, not_found
from api.http.schemas import RecordHistory
from api.http.views import owned_header, public_event
from application.event_store import BulkActionLog
from domain.bulk_action import BulkAction

router = APIRouter(
    prefix="/v1/bulk-actions", tags=["events"], responses=PROBLEM_RESPONSES, route_class=FaultTranslatingRoute
)


@router.get("/{action_id}/records/{row}/history", response_model=RecordHistory)
def read_record_history(
    action_id: str,
    row: Annotated[int, Path(ge=1, le=10**9, description="1-based record number")],
    account: AccountDep,
    events: EventsDep,
) -> RecordHistory:
    """The record's input (as stored in its chunk) and its outcome event, in order."""
    action = owned_header(events, account, action_id)
    if action.total is not None and row > action.total:
        raise not_found(f"row {row}: action {action_id} has {action.total} records")
    chunk_no, index = divmod(row - 1, action.chunk_size)
    stored = events.record_events(action.id, chunk_no, index)
    if not stored:
        raise not_found(f"row {row} of action {action_id} (not stored yet)")
    return RecordHistory(action_id=str(action.id), row=row, events=[public_event(e, row) for e in stored])


@router.get(
    "/{action_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
            "description": "one JSON object per line: the header stream, then each chunk's",
        }
    },
)
def export_events(action_id: str, account: AccountDep, events: EventsDep) -> StreamingResponse:
    """Every event of the action, streamed: its header stream, then each chunk's stream
    in chunk order (each line names its stream and version)."""
    action = owned_header(events, account, action_id)
    return StreamingResponse(_ndjson(events, action), media_type="application/x-ndjson")


def _ndjson(events: BulkActionLog, action: BulkAction) -> Iterator[bytes]:
    for event in events.action_events(action.id):
        yield orjson.dumps(public_event(event)) + b"\n"
    chunk_no = 0
    while action.chunk_count is None or chunk_no < action.chunk_count:
        stream = events.chunk_events(action.id, chunk_no)
        if not stream:
            break
        yield b"".join(orjson.dumps(public_event(e)) + b"\n" for e in stream)
        chunk_no += 1
