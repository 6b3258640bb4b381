"""Storing accepted inputs as chunks in the background, and after a restart.

An API answers a submission with its id at once (202); the input, already in a spool
file, is stored as chunks (``Submission.store_pending``) on a small thread pool after
the answer has gone out, and the spool file is removed once it is safely in the event
store. After a restart, whatever a previous process left unfinished is taken up again
(``resume_unfinished``; the application decides what each action needs).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol
from uuid import UUID

from api.http import spool
from application.submission import PendingInput
from infrastructure.bootstrap import ApplicationServices

log = logging.getLogger(__name__)


class InputStoring(Protocol):
    """Takes an accepted action's spooled input, to be stored as chunks in the background."""

    def store(self, pending: PendingInput) -> None: ...

    def close(self) -> None: ...


class InputStorer:
    """Stores inputs after the 202 has been sent, on a small pool of threads."""

    def __init__(self, services: ApplicationServices, threads: int = 2) -> None:
        self.services = services
        self.threads = threads
        self.pool: ThreadPoolExecutor | None = None
        self._running: dict[UUID, Future[None]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()  # set by close: give up waiting out a fault

    def store(self, pending: PendingInput) -> None:
        with self._lock:
            running = self._running.get(pending.action_id)
            if running is not None and not running.done():
                return
            if self.pool is None:
                self.pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="store-input")
            self._running[pending.action_id] = self.pool.submit(self._store, pending)

    def _store(self, pending: PendingInput) -> None:
        store = functools.partial(self.services.submission.store_pending, pending)
        try:
            # Resumable, so an infrastructure fault (a full disk) is waited out.
            self.services.faults.retrying("storing an input", store, self._stop)
        except Exception:
            log.exception("storing the input of action %s failed; a restart resumes it", pending.action_id)
            return
        if pending.path is not None:
            Path(pending.path).unlink(missing_ok=True)

    def wait(self, action_id: UUID, timeout: float | None = None) -> None:
        with self._lock:
            future = self._running.get(action_id)
        if future is not None:
            future.result(timeout)

    def close(self) -> None:
        """Wait for the inputs being stored; a later ``store`` starts a new pool."""
        with self._lock:
            pool, self.pool = self.pool, None
        self._stop.set()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=False)
        self._stop = threading.Event()


def resume_unfinished(
    services: ApplicationServices,
    storer: InputStorer,
    *,
    redispatch: bool,
    created_before: str,
    data_dir: Path,
    swept: Callable[[], None] = lambda: None,
) -> int:
    """After a restart: store the rest of every half-stored input from its spool file,
    and (``redispatch``: the in-process transport, whose queue died with the process)
    publish again every chunk that has no outcomes yet. Only actions created before
    ``created_before`` (this run's start): newer ones are being stored by the API that
    took them. First remove the spool files of gone processes that no unfinished action
    needs, then call ``swept`` (from then on a new request cannot race the sweep: the
    API is ready while the resuming goes on). Returns how many actions were resumed."""
    recovery = services.recovery
    spool.sweep(data_dir / "spool", recovery.inputs_needed)
    swept()
    resumed = 0
    for restart in recovery.restarts(created_before):
        resumed += 1
        if restart.input_gone:
            log.error("action %s cannot resume: its input is gone; cancel it", restart.action_id)
            continue
        if restart.pending is not None:
            storer.store(restart.pending)
            if redispatch:
                storer.wait(restart.action_id)
        if redispatch:
            recovery.redispatch_unfinished(restart.action_id)
    return resumed
