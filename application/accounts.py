"""Accounts, API keys and per-account limits: ports and use cases.

An API key is shown once, when the account is created; only its SHA-256 is stored,
so a leaked store does not leak usable keys. Keys are ``bap_`` followed by 43
URL-safe characters (32 random bytes): long enough that hashing without a salt is
safe, and the prefix lets secret scanners recognise a leaked key.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from uuid import uuid4

from application.faults import FaultPolicy
from application.ports.quotas import Clock, QuotaLimits

KEY_PREFIX = "bap_"
# Requests are counted per account in fixed windows of this many seconds.
REQUEST_WINDOW_SECONDS = 60


@dataclass(frozen=True, slots=True)
class AccountLimits:
    requests_per_minute: int
    records_per_day: int
    max_active_actions: int

    @property
    def quota(self) -> QuotaLimits:
        return QuotaLimits(self.records_per_day, self.max_active_actions)


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    name: str
    key_hash: str
    limits: AccountLimits
    created_at: str
    # Signs the account's webhook deliveries (application/webhooks.py). Kept as it is,
    # unlike the API key: the sender needs it to sign (docs/security.md). None for an
    # account made before webhooks existed, until it is given one.
    webhook_secret: str | None = field(default=None, repr=False)

    @property
    def key_id(self) -> str:
        """Names the key in the audit trail without revealing it: its hash's head."""
        return "key_" + self.key_hash[:12]


class DuplicateAccountError(Exception):
    """An account with this name already exists."""


class AccountStore(Protocol):
    """Accounts by id and by the hash of their API key (unique)."""

    def add(self, account: Account) -> None:
        """Store a new account; ``DuplicateAccountError`` if the name is taken."""
        ...

    def by_key_hash(self, key_hash: str) -> Account | None: ...

    def get(self, account_id: str) -> Account | None: ...

    def set_webhook_secret(self, account_id: str, secret: str) -> bool:
        """Replace the account's webhook secret; False if there is no such account."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RateDecision:
    """One request counted against a fixed one-minute window (or refused)."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the window ends and the count starts again


class RateLimiter(Protocol):
    """Counts requests per account in fixed windows, atomically: two API processes
    sharing the store never both take the last request of a window."""

    def hit(self, account_id: str, limit: int, window_seconds: int, now: datetime) -> RateDecision:
        """Count one request if under ``limit``; a refused request is not counted."""
        ...

    def close(self) -> None: ...


def fixed_window(now: datetime, window_seconds: int) -> tuple[int, int]:
    """(start of the window ``now`` falls in, seconds until it ends), in epoch seconds."""
    epoch = int(now.timestamp())
    start = epoch - epoch % window_seconds
    return start, start + window_seconds - epoch


def counted(used: int, limit: int, reset_seconds: int) -> RateDecision:
    """The decision for one more request when ``used`` are already counted in the window."""
    if used >= limit:
        return RateDecision(False, limit, 0, reset_seconds)
    return RateDecision(True, limit, limit - used - 1, reset_seconds)


class FallbackRateLimiter:
    """The shared limiter, or, while its store is unavailable (a full disk, a database
    down), a process-local one: a request is never refused with a 500 because its
    count could not be written, and the limit still holds per API process."""

    def __init__(self, shared: RateLimiter, local: RateLimiter, faults: FaultPolicy) -> None:
        self.shared, self.local, self.faults = shared, local, faults

    def hit(self, account_id: str, limit: int, window_seconds: int, now: datetime) -> RateDecision:
        try:
            decision = self.shared.hit(account_id, limit, window_seconds, now)
        except Exception as exc:
            if not self.faults.is_infrastructure(exc):
                raise
            self.faults.episodes.failed("request counting (counting per process meanwhile)", exc)
            return self.local.hit(account_id, limit, window_seconds, now)
        self.faults.episodes.recovered("request counting (counting per process meanwhile)")
        return decision

    def close(self) -> None:
        self.shared.close()
        self.local.close()


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


WEBHOOK_SECRET_PREFIX = "whsec_"


def new_webhook_secret() -> str:
    return WEBHOOK_SECRET_PREFIX + secrets.token_urlsafe(32)


class Accounts:
    """Create accounts, recognise their API keys, and count their requests."""

    def __init__(self, store: AccountStore, clock: Clock, rate_limiter: RateLimiter) -> None:
        self.store = store
        self.clock = clock
        self.rate_limiter = rate_limiter

    def create(self, name: str, limits: AccountLimits) -> tuple[Account, str]:
        """A new account and its API key (returned once; only the hash is stored), with
        a webhook secret of its own (``account.webhook_secret``, shown once too)."""
        if not name.strip():
            raise ValueError("an account needs a name")
        if min(limits.requests_per_minute, limits.records_per_day, limits.max_active_actions) < 1:
            raise ValueError("every limit must be at least 1")
        api_key = new_api_key()
        account = Account(
            account_id=f"acc_{uuid4().hex}",
            name=name.strip(),
            key_hash=hash_key(api_key),
            limits=limits,
            created_at=self.clock.now().isoformat(),
            webhook_secret=new_webhook_secret(),
        )
        self.store.add(account)
        return account, api_key

    def new_webhook_secret(self, account_id: str) -> str:
        """Give the account a new webhook secret (the old one stops signing at once);
        ``LookupError`` if there is no such account."""
        secret = new_webhook_secret()
        if not self.store.set_webhook_secret(account_id, secret):
            raise LookupError(f"no account {account_id!r}")
        return secret

    def authenticate(self, api_key: str) -> Account | None:
        if not api_key.startswith(KEY_PREFIX):
            return None
        return self.store.by_key_hash(hash_key(api_key))

    def count_request(self, account: Account) -> RateDecision:
        """Count one request of the account in the current window, or refuse it (not
        counted) when the account's requests per minute are spent."""
        limit = account.limits.requests_per_minute
        return self.rate_limiter.hit(account.account_id, limit, REQUEST_WINDOW_SECONDS, self.clock.now())
