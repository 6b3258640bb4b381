"""The webhook outbox: a follower of the event log, like the relay, with its own
position (``webhooks``). For every stored ``Completed`` or ``Cancelled`` of an action
with a ``callback_url`` it schedules one delivery (its id derived from the action, so
a step run again after a crash schedules nothing twice); then it makes the attempts
that are due, recording each one. A crash at any point loses nothing: the position
is saved after the deliveries it covers are stored, and an attempt in flight is made
again once its lease ends. Receivers see each delivery at least once.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from application.accounts import AccountStore
from application.event_store import BulkActionLog, position_after
from application.faults import FaultPolicy
from application.ports.messaging import PositionStore
from application.ports.quotas import Clock
from application.ports.webhooks import (
    DELIVERED,
    FAILED,
    PENDING,
    Delivery,
    DeliveryAttempt,
    WebhookDeliveries,
    WebhookSender,
    WebhookSendError,
)
from application.queries import ActionQueries
from application.webhooks import SIGNATURE_HEADER, CallbackUrlError, CallbackUrls, RetrySchedule, payload, signature
from domain.bulk_action import BulkAction

log = logging.getLogger(__name__)
_DELIVERY_NAMESPACE = uuid5(NAMESPACE_URL, "bulk-action-platform/webhook")
USER_AGENT = "bulkactions-webhooks/1"


def delivery_id_for(action_id: UUID, event: str) -> str:
    return str(uuid5(_DELIVERY_NAMESPACE, f"{action_id}:{event}"))


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    urls: CallbackUrls
    schedule: RetrySchedule
    timeout: float
    batch: int = 10  # deliveries claimed per step, and attempted at once

    @property
    def lease(self) -> float:
        """How long a claimed delivery is not due again: longer than one attempt can
        take (the timeout covers connecting and each read), with a margin."""
        return 2 * self.timeout + 5.0


class WebhookOutbox:
    def __init__(
        self,
        events: BulkActionLog,
        positions: PositionStore,
        deliveries: WebhookDeliveries,
        accounts: AccountStore,
        sender: WebhookSender,
        config: WebhookConfig,
        clock: Clock,
        faults: FaultPolicy,
        name: str = "webhooks",
    ) -> None:
        self.events, self.positions, self.deliveries = events, positions, deliveries
        self.accounts, self.sender, self.config = accounts, sender, config
        self.clock, self.faults, self.name = clock, faults, name
        self._pool: ThreadPoolExecutor | None = None

    def run_once(self, page: int = 500) -> int:
        return self.schedule_finished(page) + self.send_due()

    def run(self, stop: threading.Event, poll_seconds: float = 0.1) -> None:
        """Steps until stopped. An unexpected error is logged and the step tried again
        a little later: a fault in a delivery must not stop the imports beside it."""
        while not stop.is_set():
            try:
                self.faults.run_steps(self.name, self.run_once, stop, poll_seconds)
            except Exception:
                log.exception("%s: step failed; trying again in 5s", self.name)
                stop.wait(5.0)

    def schedule_finished(self, page: int = 500) -> int:
        """Schedule a delivery for each action finished since the stored position."""
        position = self.positions.get(self.name)
        head = self.events.head()
        if head <= position:
            return 0
        kinds = [BulkAction.Completed, BulkAction.Cancelled]
        finished = self.events.follow(position, page, kinds=kinds, until=head)
        scheduled = sum(self._schedule(event) for _, event in finished)
        self.positions.set(self.name, position_after(finished, page, head))
        return scheduled

    def _schedule(self, event: Any) -> bool:
        action = self.events.get_action(event.originator_id)
        if not action.callback_url:
            return False
        kind = "completed" if isinstance(event, BulkAction.Completed) else "cancelled"
        delivery_id = delivery_id_for(action.id, kind)
        body = payload(delivery_id, kind, event.timestamp.isoformat(), self._final(action, event))
        now = self.clock.now().timestamp()
        give_up_at = now + self.config.schedule.retry_for
        delivery = Delivery(
            delivery_id, str(action.id), action.account_id, kind, action.callback_url, body, now, give_up_at
        )
        return self.deliveries.schedule(delivery)

    def _final(self, action: BulkAction, event: Any) -> dict[str, Any]:
        counts: tuple[int | None, int, int, int]
        if isinstance(event, BulkAction.Completed):
            counts = (event.total, event.succeeded, event.failed, event.skipped)
        else:  # cancelled: what the chunks processed before it stored, read from the events
            summaries = [self.events.chunk_summary(action.id, n) for n in range(action.chunk_count or 0)]
            done = [s for s in summaries if s is not None]
            succeeded, failed = sum(s.succeeded for s in done), sum(s.failed for s in done)
            counts = (action.total, succeeded, failed, sum(s.skipped for s in done))
        total, succeeded, failed, skipped = counts
        return {
            "id": str(action.id),
            "status": action.status.value,
            "entity": action.entity_type,
            "action": action.action_type,
            "counts": {
                "total": total,
                "processed": succeeded + failed + skipped,
                "succeeded": succeeded,
                "failed": failed,
                "skipped": skipped,
            },
            "discrepancy": getattr(event, "discrepancy", None),
        }

    def send_due(self) -> int:
        """Make the attempts that are due now, at once (a receiver that answers slowly
        holds up only its own); each is recorded with its answer."""
        claimed = self.deliveries.claim_due(self.clock.now().timestamp(), self.config.lease, self.config.batch)
        if len(claimed) == 1:
            self._attempt(claimed[0])
        elif claimed:
            # One pool for the outbox's life: its threads (and the store connections
            # each thread opens) are reused, not made again at every step.
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.config.batch, thread_name_prefix=self.name)
            for done in [self._pool.submit(self._attempt, delivery) for delivery in claimed]:
                done.result()  # a store fault recording one is raised here (the lease retries it)
        return len(claimed)

    def _attempt(self, delivery: Delivery) -> None:
        started = time.monotonic()
        status, error = self._post(delivery)
        now = self.clock.now().timestamp()
        ok = status is not None and 200 <= status < 300
        after = None if ok else self.config.schedule.next_attempt_at(delivery.attempts, now, delivery.give_up_at)
        state = DELIVERED if ok else (PENDING if after is not None else FAILED)
        duration = round((time.monotonic() - started) * 1000)
        attempt = DeliveryAttempt(delivery.delivery_id, delivery.attempts, now, status, error, duration)
        self.deliveries.record(attempt, state, after)

    def _post(self, delivery: Delivery) -> tuple[int | None, str | None]:
        account = self.accounts.get(delivery.account_id)
        if account is None or not account.webhook_secret:
            return None, f"account {delivery.account_id} has no webhook secret"
        body = delivery.payload.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Webhook-Id": delivery.delivery_id,
            "Webhook-Attempt": str(delivery.attempts),
            SIGNATURE_HEADER: signature(account.webhook_secret, int(self.clock.now().timestamp()), body),
        }
        try:
            address = self.config.urls.address(delivery.url)
            status = self.sender.post(delivery.url, address, body, headers, self.config.timeout)
        except (CallbackUrlError, WebhookSendError) as exc:
            return None, str(exc)
        return status, None if 200 <= status < 300 else f"answered HTTP {status}"


@dataclass(frozen=True, slots=True)
class WebhookDeliveryView:
    delivery: Delivery
    attempts: list[DeliveryAttempt]


class Webhooks:
    """What the entrypoints ask of webhooks: check a callback before an action is made,
    and show an action's deliveries to its account."""

    def __init__(
        self, deliveries: WebhookDeliveries, queries: ActionQueries, accounts: AccountStore, urls: CallbackUrls
    ) -> None:
        self.store, self.queries, self.accounts, self.urls = deliveries, queries, accounts, urls

    def check_callback(self, account_id: str, url: str) -> None:
        """``CallbackUrlError`` unless ``url`` may be called and the account can sign."""
        self.urls.checked(url)
        account = self.accounts.get(account_id)
        if account is None or not account.webhook_secret:
            raise CallbackUrlError(
                f"account {account_id!r} has no webhook secret to sign deliveries with: create an account"
                " (`bulkactions accounts create`) or give it one (`bulkactions accounts webhook-secret`)"
            )

    def deliveries(self, account_id: str | None, action_id: UUID) -> tuple[str | None, list[WebhookDeliveryView]]:
        """The action's callback URL and its deliveries (``ActionNotFoundError`` if it is
        another account's)."""
        action = self.queries.owned_action(account_id, action_id)
        found = self.store.for_action(action.account_id, str(action_id))
        return action.callback_url, [WebhookDeliveryView(d, attempts) for d, attempts in found]
