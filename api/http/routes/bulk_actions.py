"""Bulk actions: submit (JSON records or a streamed file upload), list, read, cancel."""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.http.deps import AccountDep, CancellationDep, QueriesDep, StateDep
from api.http.problems import PROBLEM_RESPONSES, FaultTranslatingRoute
from api.http.public import action_public, action_uuid, links
from api.http.ratelimit_headers import quota_refused
from api.http.schemas import SUBMIT_DOC, ActionAccepted, ActionPage, ActionPublic
from api.http.submitted_input import SpooledSubmission, spooled_submission
from application.accounts import Account
from application.actors import api_key_actor
from application.actors import request_id as request_id_of
from application.ports.quotas import QuotaExceededError
from application.ports.read_models import ActionFilter
from application.submission import PendingInput, Submitted
from domain.bulk_action import ActionStatus

router = APIRouter(
    prefix="/v1/bulk-actions", tags=["bulk-actions"], responses=PROBLEM_RESPONSES, route_class=FaultTranslatingRoute
)
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="a retry with the same key returns the same action",
    ),
]


@router.post(
    "",
    status_code=202,
    response_model=ActionAccepted,
    openapi_extra=SUBMIT_DOC,
    responses={
        413: PROBLEM_RESPONSES[422] | {"description": "Body over the size cap"},
        415: PROBLEM_RESPONSES[422] | {"description": "Unsupported media or file type"},
        400: PROBLEM_RESPONSES[422] | {"description": "Malformed body"},
    },
)
async def create_bulk_action(
    request: Request, account: AccountDep, state: StateDep, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Submit a bulk action; answered with 202 and its id as soon as the input is checked."""
    sent = await spooled_submission(request, account, state.spool.path, state.max_upload_bytes, idempotency_key)
    request_id = request_id_of(request.headers.get("x-request-id"))
    sent = replace(sent, command=replace(sent.command, actor=api_key_actor(account, request_id)))
    submitted = await run_in_threadpool(functools.partial(_submit, state, account, sent))
    action_id = str(submitted.action_id)
    accepted = ActionAccepted(id=action_id, status=submitted.status, created=submitted.created, links=links(action_id))
    headers = {"Location": accepted.links.self, "X-Request-ID": request_id}
    return JSONResponse(accepted.model_dump(), status_code=202, headers=headers)


def _submit(state: StateDep, account: Account, sent: SpooledSubmission) -> Submitted:
    """Submit, then store the input in the background. The spool file is removed if
    the submission is refused or names an action that exists already."""
    try:
        submitted = state.services.submission.submit_file(
            sent.command, str(sent.path), sent.format, name=sent.name, scan=sent.scan, limits=account.limits.quota
        )
    except QuotaExceededError as exc:
        sent.path.unlink(missing_ok=True)
        raise quota_refused(exc, account.limits.quota) from None
    except BaseException:
        sent.path.unlink(missing_ok=True)
        raise
    if submitted.created:
        state.storer.store(PendingInput(submitted.action_id, sent.command, str(sent.path), sent.format))
    else:
        sent.path.unlink(missing_ok=True)
    return submitted


def Instant(description: str) -> Any:  # noqa: N802 (a parameter declaration, like Query)
    return Query(description=description, pattern=_ISO_INSTANT, json_schema_extra={"format": "date-time"})


_ISO_INSTANT = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})?$"


@router.get("", response_model=ActionPage, responses={400: PROBLEM_RESPONSES[422] | {"description": "Bad cursor"}})
def list_bulk_actions(
    *,
    account: AccountDep,
    queries: QueriesDep,
    status: Annotated[ActionStatus | None, Query()] = None,
    entity: Annotated[str | None, Query(max_length=64)] = None,
    created_from: Annotated[str | None, Instant(description="ISO 8601 date-time, inclusive")] = None,
    created_to: Annotated[str | None, Instant(description="ISO 8601 date-time, exclusive")] = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ActionPage:
    """The account's actions, newest first, filtered, one page at a time."""
    filt = ActionFilter(account.account_id, status.value if status else None, entity, created_from, created_to)
    page = queries.action_page(filt, cursor, limit)
    return ActionPage(items=[action_public(v) for v in page.items], next_cursor=page.next_cursor)


@router.get("/{action_id}", response_model=ActionPublic)
async def read_bulk_action(action_id: str, account: AccountDep, state: StateDep, queries: QueriesDep) -> ActionPublic:
    """Status, counts, progress (records/s, ETA) and timings, from the read model.

    The key and rate checks and this one indexed read run on the event loop on SQLite.
    A retried action shows its chain of retries (``retried_by``) with their counts."""
    view = await state.store_io(queries.owned_view, account.account_id, action_uuid(action_id))
    retries = await state.store_io(queries.retries, view) if view.retried_by else None
    return action_public(view, retries)


@router.post(
    "/{action_id}/cancel",
    response_model=ActionPublic,
    responses={409: PROBLEM_RESPONSES[422] | {"description": "Already completed or cancelled"}},
)
def cancel_bulk_action(action_id: str, account: AccountDep, cancellation: CancellationDep) -> ActionPublic:
    """Cancel: chunks not yet processed never are. Answers with the counts so far."""
    return action_public(cancellation.cancel(account.account_id, action_uuid(action_id)))


@router.post(
    "/{action_id}/revert",
    status_code=202,
    response_model=ActionAccepted,
    responses={409: PROBLEM_RESPONSES[422] | {"description": "Not finished, already reverted, or itself a revert"}},
)
def revert_bulk_action(action_id: str, request: Request, account: AccountDep, state: StateDep) -> JSONResponse:
    """Undo a finished action: a new action of type ``revert`` (202 + Location), linked
    both ways, with one outcome per record of the original. A field changed since by
    anything else is left alone (skipped, changed_since); an inserted entity is removed
    only if it still holds exactly what the insert set."""
    request_id = request_id_of(request.headers.get("x-request-id"))
    actor = api_key_actor(account, request_id)
    services = state.services
    revert_id = services.reversion.start(account.account_id, action_uuid(action_id), account.limits.quota, actor)
    pending = services.recovery.pending_input(revert_id)
    if pending is not None:
        state.storer.store(pending)
    accepted = ActionAccepted(id=str(revert_id), status="QUEUEING", created=True, links=links(str(revert_id)))
    headers = {"Location": accepted.links.self, "X-Request-ID": request_id}
    return JSONResponse(accepted.model_dump(), status_code=202, headers=headers)
