"""The audit trail: one record's events, and an action's whole history as NDJSON.

These are the deliberate exceptions to "queries come from read models": they read the
event store itself, so they show what was recorded, not a projection of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path
from fastapi.responses import StreamingResponse

from api.http.deps import AccountDep, QueriesDep
from api.http.problems import PROBLEM_RESPONSES, FaultTranslatingRoute
from api.http.public import action_uuid, event_public
from api.http.schemas import RecordHistory

router = APIRouter(
    prefix="/v1/bulk-actions", tags=["events"], responses=PROBLEM_RESPONSES, route_class=FaultTranslatingRoute
)


@router.get("/{action_id}/records/{row}/history", response_model=RecordHistory)
def read_record_history(
    action_id: str,
    row: Annotated[int, Path(ge=1, le=10**9, description="1-based record number")],
    account: AccountDep,
    queries: QueriesDep,
) -> RecordHistory:
    """The record's input (as stored in its chunk) and its outcome event, in order."""
    history = queries.record_history(account.account_id, action_uuid(action_id), row)
    return RecordHistory(
        action_id=str(history.action_id),
        row=row,
        column_mapping=history.column_mapping,
        events=[event_public(e, row) for e in history.events],
    )


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
def export_events(action_id: str, account: AccountDep, queries: QueriesDep) -> StreamingResponse:
    """Every event of the action, streamed: its header stream, then each chunk's stream
    in chunk order (each line names its stream and version)."""
    action = queries.owned_action(account.account_id, action_uuid(action_id))
    return StreamingResponse(_ndjson(queries.action_history(action)), media_type="application/x-ndjson")


def _ndjson(streams: Iterator[list[Any]]) -> Iterator[bytes]:
    for stream in streams:
        yield b"".join(orjson.dumps(event_public(e)) + b"\n" for e in stream)
