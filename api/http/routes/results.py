"""Per-record results: the log pages (JSON) and the results CSVs (spreadsheet-safe)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from api import presenters
from api.http.deps import AccountDep, QueriesDep
from api.http.problems import PROBLEM_RESPONSES, FaultTranslatingRoute
from api.http.public import action_uuid
from api.http.schemas import LogEntry, LogPage

router = APIRouter(
    prefix="/v1/bulk-actions", tags=["results"], responses=PROBLEM_RESPONSES, route_class=FaultTranslatingRoute
)
OutcomeName = Literal["succeeded", "failed", "skipped"]


@router.get("/{action_id}/logs", response_model=LogPage)
def read_logs(
    action_id: str,
    *,
    account: AccountDep,
    queries: QueriesDep,
    outcome: OutcomeName | None = None,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,12}$", description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> LogPage:
    """Per-record outcomes in row order, optionally of one outcome only."""
    view = queries.owned_view(account.account_id, action_uuid(action_id))
    page = queries.log_page(view, outcome, int(cursor or 0), limit)
    return LogPage(items=[LogEntry(**presenters.log_line(line)) for line in page.items], next_cursor=page.next_cursor)


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
def export_results(action_id: str, outcome: OutcomeName, account: AccountDep, queries: QueriesDep) -> StreamingResponse:
    """The records with one outcome: row number, outcome, entity id or errors, then the
    input row itself. Cells that a spreadsheet would run as a formula are neutralised."""
    view = queries.owned_view(account.account_id, action_uuid(action_id))
    filename = f"{view.action_id}-{outcome}.csv"
    return StreamingResponse(
        presenters.result_csv_lines(queries.result_rows(view, outcome)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
