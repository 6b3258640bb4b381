"""Contract of the AccountStore port, and of the Accounts use case on each adapter."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from application.accounts import (
    Account,
    AccountLimits,
    Accounts,
    DuplicateAccountError,
    hash_key,
)
from infrastructure.inprocess.rate_limits import InProcessRateLimiter
from tests.contract import adapters

LIMITS = AccountLimits(requests_per_minute=60, records_per_day=1000, max_active_actions=3)


class FixedClock:
    def now(self) -> datetime:
        return datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=sorted(adapters.ACCOUNT_STORES))
def account_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    store = adapters.ACCOUNT_STORES[request.param](request, tmp_path)
    yield store
    store.close()


def test_an_account_is_found_by_its_id_and_by_its_key_hash(account_store: Any) -> None:
    account = Account("acc_1", "acme", hash_key("bap_secret"), LIMITS, "2026-11-01T12:00:00+00:00")
    account_store.add(account)
    assert account_store.get("acc_1") == account
    assert account_store.by_key_hash(hash_key("bap_secret")) == account
    assert account_store.by_key_hash(hash_key("bap_other")) is None
    assert account_store.get("acc_2") is None


def test_two_accounts_cannot_share_a_name(account_store: Any) -> None:
    account_store.add(Account("acc_1", "acme", "h1", LIMITS, "t"))
    with pytest.raises(DuplicateAccountError):
        account_store.add(Account("acc_2", "acme", "h2", LIMITS, "t"))
    assert account_store.get("acc_2") is None


def _accounts(store: Any) -> Accounts:
    return Accounts(store, FixedClock(), InProcessRateLimiter())


def test_a_created_key_authenticates_and_only_its_hash_is_stored(account_store: Any) -> None:
    accounts = _accounts(account_store)
    account, api_key = accounts.create("globex", LIMITS)
    assert api_key.startswith("bap_") and len(api_key) > 40
    stored = account_store.get(account.account_id)
    assert stored.key_hash == hash_key(api_key) and api_key not in repr(stored)
    assert accounts.authenticate(api_key) == account
    assert stored.limits == LIMITS
    assert accounts.authenticate(api_key + "x") is None
    assert accounts.authenticate("Bearer " + api_key) is None


def test_every_account_gets_its_own_key(account_store: Any) -> None:
    accounts = _accounts(account_store)
    (one, key1), (two, key2) = accounts.create("a", LIMITS), accounts.create("b", LIMITS)
    assert key1 != key2
    assert accounts.authenticate(key1) == one and accounts.authenticate(key2) == two


def test_limits_below_one_are_refused(account_store: Any) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        _accounts(account_store).create("zero", AccountLimits(0, 1, 1))


def test_an_accounts_requests_are_counted_against_its_own_limit_per_minute(account_store: Any) -> None:
    accounts = _accounts(account_store)
    account, _ = accounts.create("initech", AccountLimits(2, 10, 1))
    decisions = [accounts.count_request(account) for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert decisions[0].limit == 2 and decisions[0].remaining == 1
