"""Completion webhooks: where deliveries and their attempts are kept, how a request
leaves, and how a host name becomes addresses.

``WebhookDeliveries`` has one contract suite (``tests/contract/test_webhook_deliveries.py``)
run against every adapter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST to make (and make again until it is answered with a 2xx, or given up).

    Times are seconds since the epoch. ``attempts`` counts the attempts started,
    ``payload`` is the JSON body, fixed when the delivery is scheduled (every attempt
    sends the same bytes, signed afresh)."""

    delivery_id: str
    action_id: str
    account_id: str
    event: str  # completed | cancelled
    url: str
    payload: str
    scheduled_at: float
    give_up_at: float  # the last attempt is made at this moment, if none succeeded before
    state: str = PENDING
    attempts: int = 0
    next_attempt_at: float | None = None


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    delivery_id: str
    attempt: int  # 1, 2, ...
    at: float
    status_code: int | None  # the receiver's answer; None when none came
    error: str | None  # why it did not count as delivered
    duration_ms: int


class WebhookDeliveries(Protocol):
    """Deliveries by id (unique) and every attempt made for them."""

    def schedule(self, delivery: Delivery) -> bool:
        """Store a new pending delivery, due at once; False (nothing changed) if one
        with this id exists: scheduling again after a crash changes nothing."""
        ...

    def claim_due(self, now: float, lease_seconds: float, limit: int) -> list[Delivery]:
        """Take up to ``limit`` pending deliveries due at ``now``, atomically: each one's
        ``attempts`` goes up by one (the attempt about to be made, as returned) and it
        is not due again for ``lease_seconds``, so two senders never attempt it at once,
        and a sender killed mid-attempt leaves it due again once the lease ends."""
        ...

    def record(self, attempt: DeliveryAttempt, state: str, next_attempt_at: float | None) -> None:
        """Store an attempt (once: the same attempt number again changes nothing) and
        the delivery's new state and next due time."""
        ...

    def for_action(self, account_id: str, action_id: str) -> list[tuple[Delivery, list[DeliveryAttempt]]]:
        """The account's deliveries for one action, each with its attempts in order."""
        ...

    def close(self) -> None: ...


class WebhookSendError(Exception):
    """No answer: the connection was refused, timed out or broke."""


class WebhookSender(Protocol):
    def post(self, url: str, address: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        """POST ``body`` to ``url``, connecting to ``address`` (the host's address that
        was checked, so a name that resolves elsewhere a moment later is not followed);
        no redirect is followed. The HTTP status, or ``WebhookSendError``."""
        ...


class AddressResolver(Protocol):
    def addresses(self, host: str, port: int) -> Sequence[str]:
        """Every address ``host`` resolves to; ``LookupError`` if it does not resolve."""
        ...
