"""Per-record results: the log pages (JSON) and the results CSVs (spreadsheet-safe)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from api import presenters
from api.http.deps import AccountDep, EventsDep, ReadModelsDep
from api.http.problems import PROBLEM_RESPONSES, FaultTranslatingRoute
from api.http.schemas import LogEntry, LogPage
from api.http.views import owned_view
from application.ports.read_models import ActionView, ChunkInput, LogLine, ReadModelStore
from application.submission import allowed_fields

router = APIRouter(
    prefix="/v1/bulk-actions", tags=["results"], responses=PROBLEM_RESPONSES, route_class=FaultTranslatingRoute
)
OutcomeName = Literal["succeeded", "failed", "skipped"]
_PAGE = 2000


@router.get("/{action_id}/logs", response_model=LogPage)
def read_logs(
    action_id: str,
    *,
    account: AccountDep,
    read_models: ReadModelsDep,
    events: EventsDep,
    outcome: OutcomeName | None = None,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,12}$", description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> LogPage:
    """Per-record outcomes in row order, optionally of one outcome only."""
    view = owned_view(read_models, events, account, action_id)
    lines = read_models.logs(view.action_id, outcome=outcome, after_row=int(cursor or 0), limit=limit + 1)
    more = len(lines) > limit
    lines = lines[:limit]
    return LogPage(
        items=[LogEntry(**presenters.log_line(line)) for line in lines],
        next_cursor=str(lines[-1].row) if more and lines else None,
    )


@router.get(
    "/{action_id}/results/{outcome}.csv",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "one CSV line per record with that outcome",
        }
    },
)
def export_results(
    action_id: str,
    outcome: OutcomeName,
    account: AccountDep,
    read_models: ReadModelsDep,
    events: EventsDep,
) -> StreamingResponse:
    """The records with one outcome: row number, outcome, entity id or errors, then the
    input row itself. Cells that a spreadsheet would run as a formula are neutralised."""
    view = owned_view(read_models, events, account, action_id)
    filename = f"{view.action_id}-{outcome}.csv"
    return StreamingResponse(
        _csv_lines(read_models, view, outcome),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _csv_lines(store: ReadModelStore, view: ActionView, outcome: str) -> Iterator[str]:
    fields = sorted(allowed_fields(view.entity_type, view.action_type, view.match_by))
    header = [*presenters.LOG_CSV_COLUMNS, *fields, "other_input"]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    chunk: ChunkInput | None = None
    after = 0
    while page := store.logs(view.action_id, outcome=outcome, after_row=after, limit=_PAGE):
        for line in page:
            if chunk is None or chunk.chunk_no != line.chunk_no:
                chunk = store.chunk_input(view.action_id, line.chunk_no)
            writer.writerow(_row(line, chunk, fields))
        after = page[-1].row
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


def _row(line: LogLine, chunk: ChunkInput | None, fields: list[str]) -> list[str]:
    stored: dict[str, Any] = {}
    if chunk is not None and 0 <= line.row - chunk.first_row < len(chunk.records):
        stored = chunk.records[line.row - chunk.first_row]
    data = dict(stored.get("data") or {})
    if "error" in stored:
        data["_unparsed"] = stored["error"]
    values = [data.pop(name, "") for name in fields]
    other = orjson.dumps(data).decode() if data else ""
    return [
        *presenters.log_csv_row(line),
        *(presenters.safe_cell(v) for v in values),
        presenters.safe_cell(other),
    ]
