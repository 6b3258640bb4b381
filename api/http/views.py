"""Finding an account's own action (404 for anyone else's) and shaping it for output."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from api import presenters
from api.http.problems import not_found
from api.http.schemas import ActionPublic, Counts, Links, Progress, Timings
from application.accounts import Account
from application.event_store import ActionNotFoundError, BulkActionLog
from application.ports.read_models import ActionView, ReadModelStore
from domain.bulk_action import BulkAction


def action_uuid(action_id: str) -> UUID:
    try:
        return UUID(action_id)
    except ValueError:
        raise not_found(f"action {action_id!r}") from None


def links(action_id: str) -> Links:
    base = f"/v1/bulk-actions/{action_id}"
    return Links(self=base, logs=f"{base}/logs", events=f"{base}/events")


def owned_header(events: BulkActionLog, account: Account, action_id: str) -> BulkAction:
    """The action's header stream (a handful of events), if the account owns it."""
    try:
        action = events.get_action(action_uuid(action_id))
    except ActionNotFoundError:
        raise not_found(f"action {action_id}") from None
    if action.account_id != account.account_id:
        raise not_found(f"action {action_id}")
    return action


def owned_view(read_models: ReadModelStore, events: BulkActionLog, account: Account, action_id: str) -> ActionView:
    """The read model of the account's action. Just after the 202 the projector may not
    have seen ``Created`` yet: then the header stream answers (read-your-writes)."""
    key = str(action_uuid(action_id))
    view = read_models.get_action(key)
    if view is None:
        return _view_of(owned_header(events, account, key))
    if view.account_id != account.account_id:
        raise not_found(f"action {action_id}")
    return view


def _view_of(action: BulkAction) -> ActionView:
    return ActionView(
        action_id=str(action.id),
        account_id=action.account_id,
        entity_type=action.entity_type,
        action_type=action.action_type,
        match_by=action.match_by,
        source_name=action.source.get("name"),
        chunk_size=action.chunk_size,
        expected_total=action.expected_total,
        created_at=action.created_on.isoformat(),
        status=action.status.value,
        total=action.total,
        chunk_count=action.chunk_count,
    )


def public(view: ActionView) -> ActionPublic:
    shown = presenters.action_summary(view)
    elapsed = None
    if view.first_outcome_at and view.last_outcome_at:
        span = datetime.fromisoformat(view.last_outcome_at) - datetime.fromisoformat(view.first_outcome_at)
        elapsed = round(span.total_seconds(), 3)
    return ActionPublic(
        id=view.action_id,
        status=view.status,
        entity=view.entity_type,
        action=view.action_type,
        match_by=view.match_by,
        source=view.source_name,
        counts=Counts(
            total=shown["total"],
            processed=view.processed,
            succeeded=view.succeeded,
            failed=view.failed,
            skipped=view.skipped,
        ),
        progress=Progress(
            percent=shown["percent"],
            records_per_second=shown["records_per_second"],
            eta_seconds=shown["eta_seconds"],
        ),
        timings=Timings(
            created_at=view.created_at,
            first_outcome_at=view.first_outcome_at,
            last_outcome_at=view.last_outcome_at,
            finished_at=view.finished_at,
            elapsed_seconds=elapsed,
        ),
        discrepancy=view.discrepancy,
        links=links(view.action_id),
    )


def public_event(event: Any, row: int | None = None) -> dict[str, Any]:
    """A stored event as the API shows it: all of it but where the server keeps the
    input (``source.path``, a path on the server that resume reads; no client needs it)."""
    record = presenters.event_record(event, row)
    source = record.get("source")
    if isinstance(source, dict) and "path" in source:
        record["source"] = {key: value for key, value in source.items() if key != "path"}
    return record
