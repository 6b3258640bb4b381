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


def test_a_created_account_has_a_webhook_secret_of_its_own_kept_out_of_its_repr(account_store: Any) -> None:
    accounts = _accounts(account_store)
    (one, _), (two, _) = accounts.create("a", LIMITS), accounts.create("b", LIMITS)
    assert one.webhook_secret.startswith("whsec_") and one.webhook_secret != two.webhook_secret
    stored = account_store.get(one.account_id)
    assert stored.webhook_secret == one.webhook_secret  # kept as it is: the sender signs with it
    assert one.webhook_secret not in repr(stored)


def test_a_new_webhook_secret_replaces_the_old_one(account_store: Any) -> None:
    accounts = _accounts(account_store)
    account, api_key = accounts.create("a", LIMITS)
    secret = accounts.new_webhook_secret(account.account_id)
    assert secret != account.webhook_secret and secret.startswith("whsec_")
    assert account_store.get(account.account_id).webhook_secret == secret
    assert accounts.authenticate(api_key).webhook_secret == secret
    with pytest.raises(LookupError):
        accounts.new_webhook_secret("acc_missing")


def test_an_account_stored_before_webhooks_has_no_secret(account_store: Any) -> None:
    account_store.add(Account("acc_1", "acme", "h1", LIMITS, "t"))
    assert account_store.get("acc_1").webhook_secret is None


def test_an_sqlite_accounts_file_of_an_earlier_release_gains_the_secret_column(tmp_path: Path) -> None:
    import sqlite3

    from infrastructure.sqlite.accounts import SQLiteAccountStore

    path = tmp_path / "accounts.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE accounts (account_id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, key_hash TEXT NOT NULL"
            " UNIQUE, requests_per_minute INTEGER NOT NULL, records_per_day INTEGER NOT NULL,"
            " max_active_actions INTEGER NOT NULL, created_at TEXT NOT NULL)"
        )
        conn.execute("INSERT INTO accounts VALUES ('acc_1', 'old', 'h1', 60, 1000, 3, 't')")
    store = SQLiteAccountStore(path)
    try:
        assert store.get("acc_1") == Account("acc_1", "old", "h1", LIMITS, "t")
        assert store.set_webhook_secret("acc_1", "whsec_x") is True
        assert store.get("acc_1").webhook_secret == "whsec_x"
    finally:
        store.close()
