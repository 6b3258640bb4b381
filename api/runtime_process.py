"""The embedded runtime in a child process of ``bulkactions serve``.

Why not threads in the API process: the chunk workers are CPU-bound Python, and in
the same interpreter they hold the GIL against the event loop; measured, GET
/v1/bulk-actions/{id} then queued for seconds during a large import. In their own
process (and the projector in a third, as ``EmbeddedRuntime`` already does) the OS
schedules them and the API answers in milliseconds. They meet only through the
SQLite files, as the production processes meet through PostgreSQL and RabbitMQ.

The child also stores the inputs the API accepts as chunks (``Submission.store_pending``,
handed over through a multiprocessing queue): parsing a million-row file is CPU work
too. On start it resumes what a previous run left unfinished (storing the rest of a
half-stored input from its spool file, and publishing again the chunks that have no
outcomes: the in-process queue died with the previous process).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
from typing import Any

from api.input_storing import InputStorer, resume_unfinished
from api.process_heap import settle_heap
from api.runtime import EmbeddedRuntime
from application.submission import PendingInput
from infrastructure.bootstrap import bootstrap
from infrastructure.logs import configure_logging
from infrastructure.settings import Settings

log = logging.getLogger(__name__)
RUNTIME_NICENESS = 10


def _run(
    settings: dict[str, Any], workers: int, created_before: str, inbox: Any, stop: Any, ready: Any, parent_pid: int
) -> None:
    config = Settings(**settings)
    configure_logging(config)
    # Import work is batch work: at a lower priority (inherited by the projector
    # process) it takes the CPU the API leaves, and the API stays quick under load.
    os.nice(RUNTIME_NICENESS)
    container = bootstrap(config)
    settle_heap()
    storer = InputStorer(container.services)
    try:
        with EmbeddedRuntime(container, workers):
            try:
                resume_unfinished(
                    container.services,
                    storer,
                    redispatch=True,
                    created_before=created_before,
                    data_dir=config.data_dir,
                    swept=ready.set,
                )
            except Exception:
                log.exception("resuming unfinished actions failed")
            ready.set()  # also when resuming failed: the API serves what is stored
            while not stop.is_set() and os.getppid() == parent_pid:
                try:
                    pending = inbox.get(timeout=0.2)
                except queue.Empty:
                    continue
                storer.store(pending)
    finally:
        if os.getppid() != parent_pid:
            # The API died: end now, as a crash would; the next `serve` resumes the
            # input this process was still storing.
            os._exit(1)
        storer.close()
        container.close()


class RuntimeProcess:
    """Relay, chunk workers and projector for ``serve``, in a child process."""

    def __init__(self, settings: Settings, workers: int, created_before: str) -> None:
        self.settings = settings
        self.workers = workers
        self.created_before = created_before
        self._ctx = multiprocessing.get_context("spawn")
        self._stop = self._ctx.Event()
        # Set once the child has swept the spool folders of gone processes (resuming
        # what a previous run left goes on after): until then /readyz answers 503.
        self._ready = self._ctx.Event()
        self._inbox = self._ctx.Queue()
        self._child: multiprocessing.process.BaseProcess | None = None

    def start(self) -> None:
        settings = self.settings.model_dump(mode="json")
        args = (settings, self.workers, self.created_before, self._inbox, self._stop, self._ready, os.getpid())
        self._child = self._ctx.Process(target=_run, args=args, name="bulk-runtime", daemon=False)
        self._child.start()

    def store(self, pending: PendingInput) -> None:
        """Hand an accepted input to the runtime process, which stores it as chunks."""
        self._inbox.put(pending)

    def close(self) -> None:
        """Nothing to release here: ``stop`` ends the process."""

    def alive(self) -> bool:
        return self._child is not None and self._child.is_alive()

    def ready(self) -> bool:
        """Started, and done sweeping what gone processes left in the spool."""
        return self.alive() and self._ready.is_set()

    def stop(self) -> None:
        self._stop.set()
        if self._child is not None:
            self._child.join(timeout=60)
            if self._child.is_alive():
                self._child.terminate()
                self._child.join(timeout=10)
