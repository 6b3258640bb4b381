"""Infrastructure faults versus record faults, and retrying through the first kind.

A record's outcome is about the record. A store that is down, a full disk or a
dropped connection says nothing about the data: the work is retried (with backoff)
until the infrastructure is back, and never recorded as ``RecordFailed``. Only what
belongs to the record itself (invalid data, a constraint it breaks, a bug that this
record alone triggers) becomes its outcome.

Which exceptions are infrastructure faults depends on the technologies in use: each
adapter package has a ``faults.is_transient`` and the composition root combines
those of the adapters it picked into one ``FaultClassifier``.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
FaultClassifier = Callable[[BaseException], bool]

# Operating-system errors that mean "the machine cannot store this now".
_TRANSIENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.ENOMEM, errno.EAGAIN})


class StoreUnavailableError(Exception):
    """A store or the broker cannot be used now. Nothing is wrong with the data."""


def is_transient_os_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def any_of(*classifiers: FaultClassifier) -> FaultClassifier:
    """One classifier from several: an exception is an infrastructure fault if it, or
    an exception it was raised from, is one for any of them (libraries wrap drivers'
    errors: the event store's OperationalError wraps sqlite3's or psycopg's)."""

    def classify(exc: BaseException) -> bool:
        return any(isinstance(e, StoreUnavailableError) or any(c(e) for c in classifiers) for e in _chain(exc))

    return classify


class FaultEpisodes:
    """Logs one line when a kind of fault starts and one when it is over, instead of
    one per failed attempt (a disk-full episode once wrote a traceback per record)."""

    def __init__(self) -> None:
        self._open: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def failed(self, where: str, exc: BaseException) -> None:
        with self._lock:
            started, attempts = self._open.get(where, (time.monotonic(), 0))
            self._open[where] = (started, attempts + 1)
        if attempts == 0:
            # One line, even for a driver's multi-line message (or one that says nothing).
            said = " ".join(str(exc).split()) or "no details given"
            log.warning("%s: %s: %s; retrying with backoff until it is back", where, type(exc).__name__, said)

    def recovered(self, where: str) -> None:
        with self._lock:
            episode = self._open.pop(where, None)
        if episode is not None:
            started, attempts = episode
            log.warning(
                "%s: working again after %.1fs (%d failed attempts)", where, time.monotonic() - started, attempts
            )

    def in_progress(self) -> list[str]:
        with self._lock:
            return sorted(self._open)


class Backoff:
    """Exponential waits between attempts through one fault: ``first`` doubling to ``most``."""

    def __init__(self, first: float, most: float) -> None:
        self.first, self.most = first, most
        self._next = first

    def next_delay(self) -> float:
        delay, self._next = self._next, min(self._next * 2, self.most)
        return delay

    def reset(self) -> None:
        self._next = self.first


@dataclass
class FaultPolicy:
    """What counts as an infrastructure fault in this process, and how to wait it out."""

    is_infrastructure: FaultClassifier
    episodes: FaultEpisodes = field(default_factory=FaultEpisodes)
    first_delay: float = 0.2
    max_delay: float = 30.0

    def backoff(self) -> Backoff:
        return Backoff(self.first_delay, self.max_delay)

    def retrying(self, where: str, call: Callable[[], T], stop: threading.Event) -> T:
        """``call()``, again and again while it fails with an infrastructure fault, with
        exponential backoff. Other errors are raised at once. Stopping during a fault
        raises ``StoreUnavailableError`` (the work stays to be done: not acknowledged)."""
        backoff = self.backoff()
        while True:
            try:
                return self.attempt(where, call, stop, backoff)
            except StoreUnavailableError:
                if stop.is_set():
                    raise

    def attempt(self, where: str, call: Callable[[], T], stop: threading.Event, backoff: Backoff) -> T:
        """``call()`` once. On an infrastructure fault: note it (one log line per
        episode), wait ``backoff``'s next delay (less if stopped) and raise
        ``StoreUnavailableError``, so the caller can let go of what it holds (a message
        goes back to its queue uncounted) before the next attempt. Other errors are
        raised as they are."""
        try:
            result = call()
        except Exception as exc:
            if not self.is_infrastructure(exc):
                raise
            self.episodes.failed(where, exc)
            stop.wait(backoff.next_delay())
            raise StoreUnavailableError(f"{where}: {type(exc).__name__}: {exc}") from exc
        backoff.reset()
        self.episodes.recovered(where)
        return result

    def run_steps(self, where: str, step: Callable[[], int], stop: threading.Event, poll_seconds: float) -> None:
        """A follower's loop (relay, projector): ``step`` until stopped, waiting
        ``poll_seconds`` when it did nothing, and through infrastructure faults."""
        while not stop.is_set():
            try:
                done = self.retrying(where, step, stop)
            except StoreUnavailableError:
                return  # stopped during a fault
            if done == 0:
                stop.wait(poll_seconds)
