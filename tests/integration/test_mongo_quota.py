"""Quota, request rate and accounts on MongoDB: the SQLite rules, held by several
threads and by several processes at once (as API replicas would)."""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from application.accounts import Account, AccountLimits, DuplicateAccountError
from application.ports.quotas import QuotaExceededError, QuotaLimits
from infrastructure.mongo.accounts import MongoAccountStore
from infrastructure.mongo.quota import MongoQuotaGate
from infrastructure.mongo.rate_limits import MongoRateLimiter
from infrastructure.sqlite.accounts import SQLiteAccountStore
from infrastructure.sqlite.rate_limits import SQLiteRateLimiter
from tests.waiting import run_in_threads

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def gate(database: tuple[str, str]) -> Iterator[MongoQuotaGate]:
    made = MongoQuotaGate(*database)
    yield made
    made.close()


def _spend_in_a_process(uri: str, database: str, attempts: int, start: Any, granted: Any) -> None:
    """Child process body: try ``attempts`` one-record reservations, report how many held."""
    gate = MongoQuotaGate(uri, database)
    limits = QuotaLimits(records_per_day=50, max_active_actions=10_000)
    start.wait()
    count = 0
    for _ in range(attempts):
        try:
            gate.reserve("shared", str(uuid.uuid4()), 1, limits, NOW)
        except QuotaExceededError:
            continue
        count += 1
    gate.close()
    granted.put(count)


def test_processes_sharing_an_account_never_spend_more_than_its_quota(database: tuple[str, str]) -> None:
    ctx = multiprocessing.get_context("spawn")
    start, granted = ctx.Event(), ctx.Queue()
    children = [ctx.Process(target=_spend_in_a_process, args=(*database, 40, start, granted)) for _ in range(2)]
    for child in children:
        child.start()
    start.set()
    counts = [granted.get(timeout=120) for _ in children]
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0
    assert sum(counts) == 50
    assert min(counts) > 0, f"both processes should have raced for the quota: {counts}"


def test_old_released_spends_leave_the_account_document_but_still_count_as_reserved(
    gate: MongoQuotaGate,
) -> None:
    limits = QuotaLimits(records_per_day=10, max_active_actions=1)
    gate.reserve("acc", "old", 10, limits, NOW - timedelta(days=30))
    gate.release("acc", "old")
    gate.reserve("acc", "new", 10, limits, NOW)
    spends = gate._accounts.find_one({"_id": "acc"})["spends"]
    assert [s["action_id"] for s in spends] == ["new"]
    gate.reserve("acc", "old", 10, limits, NOW)  # a retried submission of the old action: nothing more
    with pytest.raises(QuotaExceededError):
        gate.reserve("acc", "third", 1, QuotaLimits(records_per_day=100, max_active_actions=1), NOW)


def test_releasing_an_unknown_action_changes_nothing(gate: MongoQuotaGate) -> None:
    limits = QuotaLimits(records_per_day=10, max_active_actions=1)
    gate.release("nobody", "x")
    gate.reserve("acc", "a1", 1, limits, NOW)
    gate.release("acc", "other")
    with pytest.raises(QuotaExceededError) as refused:
        gate.reserve("acc", "a2", 1, limits, NOW)
    assert refused.value.limit == "max_active_actions"


# ---------------------------------------------------------------- request rate


@pytest.fixture
def limiter(database: tuple[str, str]) -> Iterator[MongoRateLimiter]:
    made = MongoRateLimiter(*database)
    yield made
    made.close()


def test_request_counts_follow_the_sqlite_rules_across_windows(limiter: MongoRateLimiter, tmp_path: Path) -> None:
    reference = SQLiteRateLimiter(tmp_path / "rates.db")
    moments = [NOW + timedelta(seconds=s) for s in (0, 1, 2, 3, 59, 60, 61, 61, 61, 30, 125, 126, 0)]
    try:
        for account in ("a", "2026-01-01"):
            for at in moments:
                assert limiter.hit(account, 3, 60, at) == reference.hit(account, 3, 60, at), at
        assert limiter.hit("z", 0, 60, NOW) == reference.hit("z", 0, 60, NOW)
    finally:
        reference.close()


def test_threads_never_take_more_requests_than_the_window_allows(database: tuple[str, str]) -> None:
    limiters = [MongoRateLimiter(*database) for _ in range(8)]
    allowed: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(limiters))

    def hit(limiter: MongoRateLimiter) -> None:
        barrier.wait()
        for _ in range(10):
            decision = limiter.hit("acc", 25, 60, NOW)
            if decision.allowed:
                with lock:
                    allowed.append(decision.remaining)

    run_in_threads(hit, ((lim,) for lim in limiters))
    for lim in limiters:
        lim.close()
    assert sorted(allowed) == list(range(25))


# ---------------------------------------------------------------- accounts


def test_accounts_are_stored_and_found_as_in_sqlite(database: tuple[str, str], tmp_path: Path) -> None:
    mongo, sqlite = MongoAccountStore(*database), SQLiteAccountStore(tmp_path / "accounts.db")
    account = Account("acc_1", "Acme", "h" * 64, AccountLimits(60, 1000, 5), "2026-01-01T00:00:00+00:00")
    try:
        for store in (mongo, sqlite):
            store.add(account)
            with pytest.raises(DuplicateAccountError):
                store.add(Account("acc_2", "Acme", "k" * 64, account.limits, account.created_at))
            assert store.get("acc_2") is None
        assert mongo.by_key_hash("h" * 64) == sqlite.by_key_hash("h" * 64) == account
        assert mongo.get("acc_1") == sqlite.get("acc_1") == account
        assert mongo.by_key_hash("nope") is None
    finally:
        mongo.close()
        sqlite.close()
