"""The embedded runtime: relay and chunk workers as threads, the projector as a second
process (the per-record projection is CPU work that would otherwise share one core
with the workers under the GIL).
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import threading
from typing import Any
from uuid import UUID

from application.log_context import working_on
from infrastructure.bootstrap import Container, bootstrap
from infrastructure.logs import configure_logging
from infrastructure.settings import Settings

log = logging.getLogger(__name__)


def projector_process(settings: dict[str, Any], stop: Any, parent_pid: int) -> None:
    """Child process body: project until told to stop or until the parent is gone."""
    configure_logging(Settings(**settings))
    container = bootstrap(Settings(**settings))
    projector = container.projector()
    orphaned = threading.Event()  # the parent is gone: stop even while waiting out a fault
    try:
        while not stop.is_set() and os.getppid() == parent_pid:
            if container.faults.retrying("projector", projector.run_once, orphaned) == 0:
                stop.wait(0.05)
        if stop.is_set():
            # Asked to stop (not orphaned): project what the workers stored last.
            container.faults.retrying("projector", projector.catch_up, orphaned)
    finally:
        container.close()


def store_input_process(settings: dict[str, Any], action_id: str, source: Any) -> None:
    """Child process body: store the input as chunks (parse, key index, ChunkQueued)."""
    configure_logging(Settings(**settings))
    container = bootstrap(Settings(**settings))
    try:
        # Storing the input is resumable (chunks stored are skipped): through a full
        # disk or a locked store it simply starts again once the store is back.
        store_input = functools.partial(container.services.submission.store_input, UUID(action_id), source)
        with working_on(action_id):
            container.faults.retrying("storing the input", store_input, threading.Event())
    finally:
        container.close()


class EmbeddedRuntime:
    def __init__(self, container: Container, workers: int, *, projector_in_process: bool = False) -> None:
        self.container = container
        self.workers = workers
        self.projector_in_process = projector_in_process
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self._mp_stop: Any = None
        self._child: multiprocessing.process.BaseProcess | None = None
        self._storer: multiprocessing.process.BaseProcess | None = None

    def start(self) -> None:
        c = self.container
        if c.metrics is not None:  # the in-process queue is only here: sample it here
            from infrastructure.prometheus.metrics import sample_queues

            self._thread("queue-sampler", functools.partial(sample_queues, c.services.monitoring))
        self._thread("relay", c.relay().run)
        self._thread("webhooks", c.webhook_outbox().run)
        for n in range(self.workers):
            self._thread(f"worker-{n}", c.worker().run)
        if self.projector_in_process:
            self._thread("projector", c.projector().run)
        else:
            ctx = multiprocessing.get_context("spawn")
            self._mp_stop = ctx.Event()
            settings = c.settings.model_dump(mode="json")
            self._child = ctx.Process(
                target=projector_process, args=(settings, self._mp_stop, os.getpid()), name="projector", daemon=True
            )
            self._child.start()

    def _thread(self, name: str, target: Any) -> None:
        thread = threading.Thread(target=self._guarded, args=(name, target), name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _guarded(self, name: str, target: Any) -> None:
        try:
            target(self.stop_event)
        except Exception:
            log.exception("%s stopped on an error", name)
            raise

    def store_input(self, action_id: UUID, source: Any) -> None:
        """Store the input in a process of its own, so that parsing and storing use the
        second core instead of taking the GIL from the workers; returns at once."""
        ctx = multiprocessing.get_context("spawn")
        settings = self.container.settings.model_dump(mode="json")
        self._storer = ctx.Process(
            target=store_input_process, args=(settings, str(action_id), source), name="store-input", daemon=True
        )
        self._storer.start()

    def input_stored(self) -> bool:
        """True when no input is being stored (never started, or finished well)."""
        return self._storer is None or (not self._storer.is_alive() and self._storer.exitcode == 0)

    def storing_failed(self) -> bool:
        storer = self._storer
        return storer is not None and not storer.is_alive() and storer.exitcode != 0

    def projector_alive(self) -> bool:
        if self._child is not None:
            return self._child.is_alive()
        return all(t.is_alive() for t in self.threads if t.name == "projector")

    def stop(self) -> None:
        """Stop the relay and workers first (a chunk in hand is finished), then let the
        projector catch up with everything they stored and stop."""
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=60)
        if self._mp_stop is not None:
            self._mp_stop.set()
        if self._storer is not None:
            self._storer.join(timeout=30)
            if self._storer.is_alive():
                self._storer.terminate()
        if self._child is not None:
            self._child.join(timeout=30)
            if self._child.is_alive():
                self._child.terminate()

    def __enter__(self) -> EmbeddedRuntime:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
