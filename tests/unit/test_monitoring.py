"""Readiness pings: a store that does not answer in time is named, and a ping that
hangs is waited for rather than repeated on every check."""

from __future__ import annotations

import threading
from typing import Any

from application.monitoring import Followers, Monitoring


class _Answers:
    def __init__(self) -> None:
        self.pings = 0
        self.release = threading.Event()
        self.release.set()

    def ping(self) -> None:
        self.pings += 1
        self.release.wait(10)


class _Fails:
    def ping(self) -> None:
        raise ConnectionError("refused")


def _monitoring(events: Any, read_models: Any, transport: Any) -> Monitoring:
    return Monitoring(events, read_models, None, transport, Followers("actions", "relay"), ())  # type: ignore[arg-type]


def test_each_store_that_fails_or_hangs_is_named_and_a_hanging_ping_is_not_repeated() -> None:
    broker = _Answers()
    broker.release.clear()  # hangs until released
    monitoring = _monitoring(_Answers(), _Fails(), broker)
    try:
        assert monitoring.unreachable(timeout=0.2) == ["document_store", "broker"]
        assert monitoring.unreachable(timeout=0.2) == ["document_store", "broker"]
        assert broker.pings == 1  # the second check waited on the first ping
        broker.release.set()
        assert monitoring.unreachable(timeout=2) == ["document_store"]  # the hanging ping answered
        assert monitoring.unreachable(timeout=2) == ["document_store"]
        assert broker.pings >= 2  # once answered, a check pings again
    finally:
        monitoring.close()
