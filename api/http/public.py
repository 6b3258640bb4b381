"""What the API shows of an action and of its events (the read model's ``ActionView``
turned into ``ActionPublic``), and the action ids it accepts in a path."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from api import presenters
from api.http.problems import not_found
from api.http.schemas import ActionPublic, Counts, Links, Progress, RetryLink, Timings
from application.ports.read_models import ActionView
from application.queries import elapsed_seconds


def action_uuid(action_id: str) -> UUID:
    """An action id from a path: one that is not a UUID names no action (404)."""
    try:
        return UUID(action_id)
    except ValueError:
        raise not_found(f"action {action_id!r}") from None


def links(action_id: str) -> Links:
    base = f"/v1/bulk-actions/{action_id}"
    return Links(self=base, logs=f"{base}/logs", events=f"{base}/events")


def action_public(view: ActionView, retries: list[ActionView] | None = None) -> ActionPublic:
    """``retries``: the chain of retries from this action, for its detail."""
    shown = presenters.action_summary(view, retries)
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
            elapsed_seconds=elapsed_seconds(view),
        ),
        discrepancy=view.discrepancy,
        actor=view.actor,
        reverts=view.reverts,
        reverted_by=view.reverted_by,
        retry_of=view.retry_of,
        retried_by=RetryLink.model_validate(shown["retried_by"]) if shown["retried_by"] else None,
        dry_run=view.dry_run,
        links=links(view.action_id),
    )


def event_public(event: Any, row: int | None = None) -> dict[str, Any]:
    """A stored event as the API shows it: all of it but where the server keeps the
    input (``source.path``, a path on the server that resume reads; no client needs it)."""
    record = presenters.event_record(event, row)
    source = record.get("source")
    if isinstance(source, dict) and "path" in source:
        record["source"] = {key: value for key, value in source.items() if key != "path"}
    return record
