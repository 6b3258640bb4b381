"""How the fault policy waits out an infrastructure fault: one attempt at a time, a
backoff that grows and starts over after a success, the caller told to let go of what
it holds (``StoreUnavailableError``) between attempts, and one log line per episode."""

from __future__ import annotations

import logging
import sqlite3
import threading

import pytest

from application.faults import Backoff, FaultPolicy, StoreUnavailableError
from infrastructure.sqlite import faults as sqlite_faults

pytestmark = pytest.mark.unit


def _policy() -> FaultPolicy:
    return FaultPolicy(sqlite_faults.is_transient, first_delay=0.001, max_delay=0.004)


def test_the_backoff_doubles_up_to_its_ceiling_and_starts_over_after_a_reset() -> None:
    backoff = Backoff(1.0, 4.0)
    assert [backoff.next_delay() for _ in range(4)] == [1.0, 2.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next_delay() == 1.0


def test_an_attempt_that_meets_a_fault_waits_then_asks_the_caller_to_let_go() -> None:
    policy, backoff = _policy(), Backoff(0.001, 0.004)

    def store_down() -> int:
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(StoreUnavailableError, match="database is locked"):
        policy.attempt("saving", store_down, threading.Event(), backoff)
    assert backoff.next_delay() == 0.002  # the first delay was waited


def test_an_error_of_the_work_itself_is_raised_as_it_is() -> None:
    def bug() -> int:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        _policy().attempt("saving", bug, threading.Event(), Backoff(0.001, 0.004))


def test_an_episode_is_said_once_when_it_starts_and_once_when_it_ends(caplog: pytest.LogCaptureFixture) -> None:
    policy, backoff, stop = _policy(), Backoff(0.001, 0.004), threading.Event()
    results = iter([sqlite3.OperationalError("disk I/O error\nsecond line")] * 5 + [7])

    def flaky() -> int:
        result = next(results)
        if isinstance(result, Exception):
            raise result
        return result

    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            with pytest.raises(StoreUnavailableError):
                policy.attempt("saving", flaky, stop, backoff)
        assert policy.attempt("saving", flaky, stop, backoff) == 7
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert "disk I/O error second line" in lines[0]  # a driver's multi-line message on one line
    assert "working again" in lines[1] and "5 failed attempts" in lines[1]
    assert backoff.next_delay() == 0.001  # a success starts the backoff over


def test_retrying_goes_on_until_the_call_works() -> None:
    failures = iter([True, True, False])

    def twice_down() -> str:
        if next(failures):
            raise sqlite3.OperationalError("database is locked")
        return "stored"

    assert _policy().retrying("saving", twice_down, threading.Event()) == "stored"
