"""Accounts, API keys and per-account limits: ports and use cases.

An API key is shown once, when the account is created; only its SHA-256 is stored,
so a leaked store does not leak usable keys. Keys are ``bap_`` followed by 43
URL-safe characters (32 random bytes): long enough that hashing without a salt is
safe, and the prefix lets secret scanners recognise a leaked key.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import uuid4

from application.ports import Clock, QuotaLimits

KEY_PREFIX = "bap_"


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


class DuplicateAccountError(Exception):
    """An account with this name already exists."""


class AccountStore(Protocol):
    """Accounts by id and by the hash of their API key (unique)."""

    def add(self, account: Account) -> None:
        """Store a new account; ``DuplicateAccountError`` if the name is taken."""
        ...

    def by_key_hash(self, key_hash: str) -> Account | None: ...

    def get(self, account_id: str) -> Account | None: ...

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


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


class Accounts:
    """Create accounts and recognise their API keys."""

    def __init__(self, store: AccountStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def create(self, name: str, limits: AccountLimits) -> tuple[Account, str]:
        """A new account and its API key (returned once; only the hash is stored)."""
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
        )
        self.store.add(account)
        return account, api_key

    def authenticate(self, api_key: str) -> Account | None:
        if not api_key.startswith(KEY_PREFIX):
            return None
        return self.store.by_key_hash(hash_key(api_key))
