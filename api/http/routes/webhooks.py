"""An action's webhook deliveries: each with every attempt made and its answer."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.http.deps import AccountDep, StateDep
from api.http.problems import PROBLEM_RESPONSES, FaultTranslatingRoute
from api.http.public import action_uuid
from application.ports.webhooks import DeliveryAttempt
from application.webhook_outbox import WebhookDeliveryView

router = APIRouter(
    prefix="/v1/bulk-actions", tags=["webhooks"], responses=PROBLEM_RESPONSES, route_class=FaultTranslatingRoute
)


class AttemptPublic(BaseModel):
    attempt: int
    at: str
    status_code: int | None = Field(description="the receiver's HTTP status; null when none came")
    error: str | None = Field(description="why it did not count as delivered")
    duration_ms: int


class DeliveryPublic(BaseModel):
    id: str = Field(description="also sent as the Webhook-Id header and the body's id")
    event: str = Field(description="completed or cancelled")
    url: str
    state: str = Field(description="pending (to be tried again), delivered, or failed (given up)")
    next_attempt_at: str | None
    give_up_at: str = Field(description="when the last attempt is made, if none succeeds before")
    attempts: list[AttemptPublic]


class DeliveriesPublic(BaseModel):
    action_id: str
    callback_url: str | None
    deliveries: list[DeliveryPublic] = Field(description="none until the action completes or is cancelled")


def _instant(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def _public(view: WebhookDeliveryView) -> DeliveryPublic:
    d = view.delivery
    return DeliveryPublic(
        id=d.delivery_id,
        event=d.event,
        url=d.url,
        state=d.state,
        next_attempt_at=None if d.next_attempt_at is None or d.state != "pending" else _instant(d.next_attempt_at),
        give_up_at=_instant(d.give_up_at),
        attempts=[
            AttemptPublic(
                attempt=a.attempt,
                at=_instant(a.at),
                status_code=a.status_code,
                error=a.error,
                duration_ms=a.duration_ms,
            )
            for a in view.attempts
        ],
    )


def _attempt(a: DeliveryAttempt) -> AttemptPublic:
    return AttemptPublic(
        attempt=a.attempt, at=_instant(a.at), status_code=a.status_code, error=a.error, duration_ms=a.duration_ms
    )


@router.get("/{action_id}/webhook-deliveries", response_model=DeliveriesPublic)
async def read_webhook_deliveries(action_id: str, account: AccountDep, state: StateDep) -> DeliveriesPublic:
    """The action's callback URL and its deliveries, each attempt with its answer."""
    webhooks = state.services.webhooks
    url, found = await run_in_threadpool(webhooks.deliveries, account.account_id, action_uuid(action_id))
    return DeliveriesPublic(action_id=action_id, callback_url=url, deliveries=[_public(v) for v in found])
