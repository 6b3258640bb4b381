"""The embedded runtime: the relay and the chunk workers' queue consumers as threads,
the projector as a second process (the per-record projection is CPU work that would
otherwise share one core with the workers under the GIL), and the chunk processing of
``worker_processes`` of the workers in child processes of their own, for the same
reason: with every worker a thread, deciding and storing chunks used at most one core
however many workers there were.

A worker whose chunks a child processes is still a thread here: it takes each message
from the queue, hands it to its child and waits for the answer, so redelivery,
dead-lettering and the give-back of a message after an infrastructure fault stay in
the one transport loop. A child that dies mid-chunk (killed, out of memory) is a failed
delivery like a worker's exception: the chunk is delivered again to a new child, and
its processing is idempotent.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import threading
import time
from multiprocessing.connection import Connection
from typing import Any
from uuid import UUID

from api.process_heap import settle_heap
from application.faults import StoreUnavailableError
from application.log_context import working_on
from application.relay import CHUNKS_QUEUE
from infrastructure.bootstrap import Container, bootstrap
from infrastructure.logs import configure_logging
from infrastructure.settings import Settings

log = logging.getLogger(__name__)


def name_os_process(name: str) -> None:
    """Name this child process for ``ps``/``top`` (Linux ``comm``, at most 15 bytes),
    so an operator sees which of the runtime's processes uses what."""
    try:
        with open("/proc/self/comm", "w") as comm:
            comm.write(name[:15])
    except OSError:
        pass  # not Linux, or not allowed: the name is only a convenience


def projector_process(settings: dict[str, Any], stop: Any, parent_pid: int) -> None:
    """Child process body: project until told to stop or until the parent is gone."""
    name_os_process("bulk-projector")
    configure_logging(Settings(**settings))
    container = bootstrap(Settings(**settings))
    settle_heap()
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
    name_os_process("bulk-store-in")
    configure_logging(Settings(**settings))
    container = bootstrap(Settings(**settings))
    settle_heap()
    try:
        # Storing the input is resumable (chunks stored are skipped): through a full
        # disk or a locked store it simply starts again once the store is back.
        store_input = functools.partial(container.services.submission.store_input, UUID(action_id), source)
        with working_on(action_id):
            container.faults.retrying("storing the input", store_input, threading.Event())
    finally:
        container.close()


def chunk_worker_process(settings: dict[str, Any], connection: Connection, parent_pid: int) -> None:
    """Child process body: process each chunk message the parent hands over, answer
    how it went, until the parent closes the connection or is gone."""
    name_os_process(multiprocessing.current_process().name)
    configure_logging(Settings(**settings))
    container = bootstrap(Settings(**settings))
    settle_heap()
    worker = container.worker()
    try:
        while os.getppid() == parent_pid:
            if not connection.poll(0.5):
                continue
            try:
                body, attempt = connection.recv()
            except EOFError:
                return
            try:
                worker.handle(body, attempt)
            except StoreUnavailableError as exc:
                connection.send(("unavailable", str(exc)))
            except Exception as exc:
                log.exception("chunk message failed in its worker process")
                connection.send(("failed", f"{type(exc).__name__}: {exc}"))
            else:
                connection.send(("done", ""))
    finally:
        container.close()


class ChunkWorkerProcessError(Exception):
    """The child process failed a chunk, or died with it in hand: a failed delivery."""


class ChildChunkHandler:
    """A worker thread's message handler that has a child process do the work."""

    # How long a stopping runtime waits for a child's chunk in hand before ending it
    # (it is idempotent: the next run processes it again).
    STOP_GRACE_SECONDS = 30.0

    def __init__(self, settings: dict[str, Any], name: str, stop: threading.Event) -> None:
        self.settings = settings
        self.name = name
        self.stop = stop
        self._child: multiprocessing.process.BaseProcess | None = None
        self._connection: Connection | None = None

    def start(self) -> None:
        self._started()

    def _started(self) -> Connection:
        if self._child is not None and self._child.is_alive() and self._connection is not None:
            return self._connection
        self.close()
        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe()
        self._child = ctx.Process(
            target=chunk_worker_process, args=(self.settings, theirs, os.getpid()), name=self.name, daemon=True
        )
        self._child.start()
        theirs.close()
        self._connection = ours
        return ours

    def handle(self, body: bytes, attempt: int) -> None:
        connection = self._started()
        connection.send((body, attempt))
        stopping_since: float | None = None
        while not connection.poll(0.2):
            assert self._child is not None
            if not self._child.is_alive():
                self.close()
                raise ChunkWorkerProcessError(f"worker process {self.name} died with a chunk in hand")
            if self.stop.is_set():
                stopping_since = stopping_since or time.monotonic()
                if time.monotonic() - stopping_since > self.STOP_GRACE_SECONDS:
                    self.close()
                    raise StoreUnavailableError(f"worker process {self.name} ended by the stop")
        try:
            outcome, detail = connection.recv()
        except (EOFError, OSError):  # its end closed: the child is gone
            self.close()
            raise ChunkWorkerProcessError(f"worker process {self.name} died with a chunk in hand") from None
        if outcome == "unavailable":
            raise StoreUnavailableError(detail)
        if outcome == "failed":
            raise ChunkWorkerProcessError(detail)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if self._child is not None:
            self._child.join(timeout=5)
            if self._child.is_alive():
                self._child.terminate()
                self._child.join(timeout=5)
            self._child = None


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
        self._children: list[ChildChunkHandler] = []

    def start(self) -> None:
        c = self.container
        if c.metrics is not None:  # the in-process queue is only here: sample it here
            from infrastructure.prometheus.metrics import sample_queues

            self._thread("queue-sampler", functools.partial(sample_queues, c.services.monitoring))
        self._thread("relay", c.relay().run)
        self._thread("webhooks", c.webhook_outbox().run)
        settings = c.settings.model_dump(mode="json")
        for n in range(self.workers):
            worker = c.worker()
            if n < c.settings.worker_processes:
                handler = ChildChunkHandler(settings, f"bulk-worker-{n}", self.stop_event)
                handler.start()  # its imports overlap the relay's first page
                self._children.append(handler)
                consume = functools.partial(
                    c.transport.consume, CHUNKS_QUEUE, handler.handle, dead_letter=worker.dead_letter
                )
                self._thread(f"worker-{n}", lambda stop, consume=consume: consume(stop))
            else:
                self._thread(f"worker-{n}", worker.run)
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
        for child in self._children:
            child.close()
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
