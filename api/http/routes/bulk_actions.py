"""Bulk actions: submit (JSON records or a streamed file upload), list, read, cancel."""

from __future__ import annotations

import base64
import functools
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from api.http.deps import AccountDep, EventsDep, ReadModelsDep, ServicesDep
from api.http.intake import split_json_body
from api.http.multipart import UploadSpooler, unsupported
from api.http.problems import PROBLEM_RESPONSES, FaultTranslatingRoute, ProblemError
from api.http.ratelimit_headers import quota_refused
from api.http.schemas import (
    ActionAccepted,
    ActionPage,
    ActionPublic,
    BulkActionFields,
    SubmitOptions,
)
from api.http.spool import spool_capped, spool_path
from api.http.views import links, owned_header, owned_view, public
from api.jobs import file_source
from application.accounts import Account
from application.ports.inputs import InputError, InputScan
from application.ports.quotas import QuotaExceededError
from application.ports.read_models import ActionFilter
from application.submission import SubmitCommand, checked_command
from domain.bulk_action import ActionStatus

router = APIRouter(
    prefix="/v1/bulk-actions", tags=["bulk-actions"], responses=PROBLEM_RESPONSES, route_class=FaultTranslatingRoute
)

_UPLOAD_SCHEMA = {
    "type": "object",
    "required": ["entity", "action", "file"],
    "properties": {
        "entity": {"type": "string", "example": "contact"},
        "action": {"type": "string", "enum": ["insert", "update", "upsert"]},
        "match_by": {"type": "string"},
        "chunk_size": {"type": "integer", "minimum": 1, "maximum": 10000},
        "format": {"type": "string", "enum": ["csv", "jsonl", "json"]},
        "file": {
            "type": "string",
            "format": "binary",
            "description": "CSV with a header, JSON lines, or a JSON array",
        },
    },
}
_SUBMIT_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/BulkActionCreate"}},
            "multipart/form-data": {"schema": _UPLOAD_SCHEMA},
        },
    },
}
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
    openapi_extra=_SUBMIT_DOC,
    responses={
        413: PROBLEM_RESPONSES[422] | {"description": "Body over the size cap"},
        415: PROBLEM_RESPONSES[422] | {"description": "Unsupported media or file type"},
        400: PROBLEM_RESPONSES[422] | {"description": "Malformed body"},
    },
)
async def create_bulk_action(
    request: Request, account: AccountDep, svc: ServicesDep, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Submit a bulk action; answered with 202 and its id as soon as the input is checked."""
    folder = svc.spool.path
    cap = svc.container.settings.max_upload_bytes
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json":
        raw = spool_path(folder, "json")
        await spool_capped(request.stream(), raw, cap)
        try:
            fields, path, scan = await run_in_threadpool(_split_body, raw, folder)
        finally:
            raw.unlink(missing_ok=True)
        try:
            command = _command(account, fields.entity, fields.action, fields.options, idempotency_key)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        fmt, name = "jsonl", "request body"
    elif media == "multipart/form-data":
        spooler = UploadSpooler(folder, request.headers["content-type"], cap)
        await spooler.consume(request.stream())
        try:
            command, fmt = _upload_command(account, spooler, idempotency_key)
        except Exception:
            spooler.discard()
            raise
        assert spooler.path is not None
        path, name = spooler.path, spooler.filename or "upload"
        scan = None
    else:
        raise unsupported("send application/json (records inline) or multipart/form-data (a file)")
    action_id, created, status = await run_in_threadpool(
        functools.partial(_create, svc, account, command, path, fmt=fmt, name=name, scan=scan)
    )
    accepted = ActionAccepted(
        id=str(action_id),
        status=status,
        created=created,
        links=links(str(action_id)),
    )
    return JSONResponse(accepted.model_dump(), status_code=202, headers={"Location": accepted.links.self})


def _split_body(raw: Path, spool_folder: Path) -> tuple[BulkActionFields, Path, InputScan]:
    """The spooled JSON body checked as ``BulkActionCreate`` would check it, with its
    records streamed to a JSON-lines spool file. 400 for malformed JSON, 422 (naming
    every problem) for a body that does not fit the schema."""
    try:
        body = split_json_body(raw, spool_folder)
    except InputError as exc:
        raise ProblemError(400, "malformed-body", "Bad Request", f"malformed JSON: {exc}") from None
    errors = list(body.errors)
    if "records" in body.members:
        errors.insert(0, _problem("records", "Input should be a valid list", "list_type"))
    elif not body.has_records_array:
        errors.insert(0, _problem("records", "Field required", "missing"))
    elif body.records == 0:
        errors.insert(0, _problem("records", "List should have at least 1 item after validation, not 0", "too_short"))
    fields: BulkActionFields | None = None
    try:
        fields = BulkActionFields.model_validate({k: v for k, v in body.members.items() if k != "records"})
    except ValidationError as exc:
        errors[:0] = [
            _problem(".".join(map(str, e["loc"])) or "body", e["msg"], e["type"]) for e in exc.errors(include_url=False)
        ]
    if errors or fields is None:
        body.records_path.unlink(missing_ok=True)
        first = errors[0]
        raise ProblemError(
            422, "invalid-request", "Invalid Request", f"{first['location']}: {first['message']}", errors=errors
        )
    return fields, body.records_path, body.scan


def _problem(location: str, message: str, code: str) -> dict[str, str]:
    return {"location": location, "message": message, "code": code}


def _command(account: Account, entity: str, action: str, options: SubmitOptions, key: str | None) -> SubmitCommand:
    return checked_command(SubmitCommand(account.account_id, entity, action, options.match_by, options.chunk_size, key))


def _upload_command(account: Account, spooler: UploadSpooler, key: str | None) -> tuple[SubmitCommand, str]:
    fields = spooler.fields
    missing = [name for name in ("entity", "action") if not fields.get(name)]
    if spooler.path is None:
        missing.append("file")
    if missing:
        raise ProblemError(
            422,
            "invalid-request",
            "Invalid Request",
            f"missing form field(s): {', '.join(missing)}",
        )
    try:
        options = SubmitOptions(
            match_by=fields.get("match_by") or None,
            chunk_size=int(fields.get("chunk_size") or 1000),
        )
    except (ValueError, ValidationError):
        raise ProblemError(
            422,
            "invalid-request",
            "Invalid Request",
            "chunk_size must be a whole number from 1 to 10000",
        ) from None
    command = _command(account, fields["entity"], fields["action"], options, key)
    return command, spooler.file_format()


def _create(
    svc: ServicesDep,
    account: Account,
    command: SubmitCommand,
    path: Path,
    *,
    fmt: str,
    name: str,
    scan: InputScan | None = None,
) -> tuple[UUID, bool, str]:
    """Scan the spooled input (unless it was scanned as it was written), spend quota,
    record Created; then queue it in the background. Nothing is created (and the spool
    is removed) if any of that refuses."""
    container = svc.container
    try:
        source = file_source(str(path), fmt, command)
        source.name = name  # what the user sent, not the spool file's name
        scan = scan or source.scan()
        action_id, created = container.submission().create(command, source, scan, account.limits.quota)
    except QuotaExceededError as exc:
        path.unlink(missing_ok=True)
        raise quota_refused(exc, account.limits.quota) from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if not created:
        path.unlink(missing_ok=True)
        return action_id, False, owned_header(container.events, account, str(action_id)).status.value
    svc.queuer.queue(action_id, command, path, fmt)
    return action_id, True, ActionStatus.QUEUEING.value


def Instant(description: str) -> Any:  # noqa: N802 (a parameter declaration, like Query)
    return Query(description=description, pattern=_ISO_INSTANT, json_schema_extra={"format": "date-time"})


_ISO_INSTANT = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})?$"


def _cursor(created_at: str, action_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([created_at, action_id])).decode().rstrip("=")


def _decoded_cursor(cursor: str) -> tuple[str, str]:
    try:
        created_at, action_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return str(created_at), str(action_id)
    except (ValueError, TypeError):
        raise ProblemError(400, "invalid-cursor", "Bad Request", "the cursor is not one this API gave out") from None


@router.get(
    "",
    response_model=ActionPage,
    responses={400: PROBLEM_RESPONSES[422] | {"description": "Bad cursor"}},
)
def list_bulk_actions(
    *,
    account: AccountDep,
    read_models: ReadModelsDep,
    status: Annotated[ActionStatus | None, Query()] = None,
    entity: Annotated[str | None, Query(max_length=64)] = None,
    created_from: Annotated[str | None, Instant(description="ISO 8601 date-time, inclusive")] = None,
    created_to: Annotated[str | None, Instant(description="ISO 8601 date-time, exclusive")] = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ActionPage:
    """The account's actions, newest first, filtered, one page at a time."""
    filt = ActionFilter(
        account.account_id,
        status.value if status else None,
        entity,
        _instant(created_from),
        _instant(created_to),
    )
    before = _decoded_cursor(cursor) if cursor else None
    views = read_models.list_actions(filt, before=before, limit=limit + 1)
    more = len(views) > limit
    views = views[:limit]
    next_cursor = _cursor(views[-1].created_at, views[-1].action_id) if more and views else None
    return ActionPage(items=[public(v) for v in views], next_cursor=next_cursor)


def _instant(value: str | None) -> str | None:
    """As the read models store times: ISO 8601 in UTC (a naive time is taken as UTC)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ProblemError(
            422, "invalid-request", "Invalid Request", f"{value!r} is not an ISO 8601 date-time"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


@router.get("/{action_id}", response_model=ActionPublic)
async def read_bulk_action(
    action_id: str, account: AccountDep, svc: ServicesDep, read_models: ReadModelsDep, events: EventsDep
) -> ActionPublic:
    """Status, counts, progress (records/s, ETA) and timings, from the read model.

    The key and rate checks and this one indexed read run on the event loop on SQLite."""
    return public(await svc.store_io(owned_view, read_models, events, account, action_id))


@router.post(
    "/{action_id}/cancel",
    response_model=ActionPublic,
    responses={409: PROBLEM_RESPONSES[422] | {"description": "Already completed or cancelled"}},
)
def cancel_bulk_action(action_id: str, account: AccountDep, svc: ServicesDep) -> ActionPublic:
    """Cancel: chunks not yet processed never are. Answers with the counts so far."""
    container = svc.container
    action = owned_header(container.events, account, action_id)
    container.completer().cancel(action.id)
    view = owned_view(container.read_models, container.events, account, action_id)
    view.status = ActionStatus.CANCELLED.value  # the event store has it; the read model follows
    return public(view)
