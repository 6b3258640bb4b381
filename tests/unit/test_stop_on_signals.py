"""The production processes' SIGTERM / SIGINT handler (api/cli_processes.stop_on_signals).

A Python signal handler runs in the main thread between two bytecodes, possibly while
that thread holds the stop event's own lock (inside ``stop.wait()``): a handler that
set the event there waited on itself forever. A projector on the production stack hung
so on SIGTERM (tests/integration/test_outages_production.py, 60 s timeout)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from api.cli_processes import stop_on_signals

pytestmark = pytest.mark.unit


@pytest.fixture
def handler() -> Iterator[tuple[threading.Event, Any]]:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    stop = stop_on_signals()
    yield stop, signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, before[0])
    signal.signal(signal.SIGINT, before[1])


def test_a_signal_arriving_while_the_main_thread_holds_the_events_lock_still_stops_it(
    handler: tuple[threading.Event, Any],
) -> None:
    stop, handle = handler

    def waiting_when_signalled() -> None:
        with stop._cond:  # type: ignore[attr-defined]  # held, as inside stop.wait()
            handle(signal.SIGTERM, None)

    waiter = threading.Thread(target=waiting_when_signalled, daemon=True)
    waiter.start()
    waiter.join(timeout=5)
    assert not waiter.is_alive(), "the handler deadlocked on the stop event's lock"
    assert stop.wait(timeout=5)


def test_a_second_signal_stops_at_once(handler: tuple[threading.Event, Any]) -> None:
    stop, handle = handler
    handle(signal.SIGTERM, None)
    assert stop.wait(timeout=5)
    with pytest.raises(SystemExit) as stopped:
        handle(signal.SIGINT, None)
    assert stopped.value.code == 128 + signal.SIGINT
