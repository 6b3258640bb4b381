"""Retry: submit the corrected failed rows of a finished action as a new action."""

from __future__ import annotations

import functools
from pathlib import Path
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.http.deps import AccountDep, StateDep
from api.http.json_body import split_json_body
from api.http.multipart import UploadSpooler, unsupported
from api.http.problems import PROBLEM_RESPONSES, FaultTranslatingRoute, ProblemError
from api.http.public import action_uuid, links
from api.http.ratelimit_headers import quota_refused
from api.http.schemas import ActionAccepted
from api.http.spool import spool_capped, spool_path
from application.accounts import Account
from application.actors import api_key_actor
from application.actors import request_id as request_id_of
from application.ports.inputs import InputError
from application.ports.quotas import QuotaExceededError
from application.submission import PendingInput

router = APIRouter(
    prefix="/v1/bulk-actions", tags=["bulk-actions"], responses=PROBLEM_RESPONSES, route_class=FaultTranslatingRoute
)


@router.post(
    "/{action_id}/retry",
    status_code=202,
    response_model=ActionAccepted,
    responses={
        400: PROBLEM_RESPONSES[422] | {"description": "Rows that did not fail in the action, or named twice"},
        409: PROBLEM_RESPONSES[422] | {"description": "Not finished, retried already, a revert or a dry run"},
        413: PROBLEM_RESPONSES[422] | {"description": "Body over the size cap"},
        415: PROBLEM_RESPONSES[422] | {"description": "Unsupported media or file type"},
    },
)
async def retry_bulk_action(action_id: str, request: Request, account: AccountDep, state: StateDep) -> JSONResponse:
    """Submit the corrected failed rows of a finished action again: its
    ``results/failed.csv`` with the rows fixed (multipart ``file``), or its rows as JSON
    (``{"records": [{"row": 3, "email": ...}]}``). Each record keeps its ``row``: only
    rows that failed in the action are taken (400 otherwise, naming them). A new action
    of the same entity and action type (202 + Location), linked both ways
    (``retry_of``, and ``retried_by`` in the action's detail)."""
    parent = action_uuid(action_id)
    path, fmt, name = await _spooled(request, state.spool.path, state.max_upload_bytes)
    request_id = request_id_of(request.headers.get("x-request-id"))
    actor = api_key_actor(account, request_id)
    start = functools.partial(_start, state, account, parent, path, fmt, name, actor)
    retry_id = await run_in_threadpool(start)
    accepted = ActionAccepted(id=str(retry_id), status="QUEUEING", created=True, links=links(str(retry_id)))
    headers = {"Location": accepted.links.self, "X-Request-ID": request_id}
    return JSONResponse(accepted.model_dump(), status_code=202, headers=headers)


def _start(
    state: StateDep,
    account: Account,
    parent: UUID,
    path: Path,
    fmt: str,
    name: str,
    actor: dict[str, object],
) -> UUID:
    """Check and create the retry, then store its input in the background; the spool
    file is removed if the retry is refused."""
    services = state.services
    try:
        retry_id, _ = services.retrying.start(
            account.account_id, parent, str(path), fmt, account.limits.quota, actor, name=name
        )
    except QuotaExceededError as exc:
        path.unlink(missing_ok=True)
        raise quota_refused(exc, account.limits.quota) from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    command = services.retrying.command_of(services.queries.owned_action(None, parent))
    state.storer.store(PendingInput(retry_id, command, str(path), fmt, retry=True))
    return retry_id


async def _spooled(request: Request, folder: Path, cap: int) -> tuple[Path, str, str]:
    """The retry's rows spooled to a file: (path, format, what the user called it)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json":
        return await _json_rows(request, folder, cap), "jsonl", "request body"
    if media != "multipart/form-data":
        raise unsupported("send multipart/form-data (the fixed failed.csv) or application/json (records)")
    spooler = UploadSpooler(folder, request.headers["content-type"], cap)
    await spooler.consume(request.stream())
    try:
        if spooler.path is None:
            raise ProblemError(422, "invalid-request", "Invalid Request", "missing form field(s): file")
        fmt = spooler.file_format()
    except Exception:
        spooler.discard()
        raise
    return spooler.path, fmt, spooler.filename or "upload"


async def _json_rows(request: Request, folder: Path, cap: int) -> Path:
    raw = spool_path(folder, "json")
    await spool_capped(request.stream(), raw, cap)
    try:
        body = await run_in_threadpool(split_json_body, raw, folder)
    except InputError as exc:
        raise ProblemError(400, "malformed-body", "Bad Request", f"malformed JSON: {exc}") from None
    finally:
        raw.unlink(missing_ok=True)
    problem = None
    if body.errors:
        problem = f"{body.errors[0]['location']}: {body.errors[0]['message']}"
    elif "records" in body.members or not body.has_records_array or body.records == 0:
        problem = "records: a list of at least 1 record is required"
    elif set(body.members) - {"records"}:
        problem = f"unknown member(s) {', '.join(sorted(set(body.members) - {'records'}))}: send only records"
    if problem is not None:
        body.records_path.unlink(missing_ok=True)
        raise ProblemError(422, "invalid-request", "Invalid Request", problem, errors=body.errors)
    return body.records_path
