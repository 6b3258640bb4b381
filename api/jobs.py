"""Running an import or a resume to completion.

Embedded default (``BULK_TRANSPORT=inprocess``): this process runs the relay, workers
and projector itself. Production (a broker): the relay, workers and projector are
separate, already running processes; this one only stores the input (the relay
publishes it from the event log) and watches the read model the projector keeps.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from uuid import UUID

from api.presenters import FINAL_STATUSES
from api.runtime import EmbeddedRuntime
from application.ports.inputs import InputScan, InputSource
from application.ports.read_models import ActionView
from application.relay import CHUNKS_QUEUE, chunk_message
from application.submission import SubmitCommand, allowed_fields, checked_command
from infrastructure.bootstrap import Container
from infrastructure.files.readers import FileSource

ProgressCallback = Callable[[ActionView | None], None]

log = logging.getLogger(__name__)
# Warn (once) when the read model shows no progress for this long: the relay,
# workers or projector may not be running.
STALL_WARNING_SECONDS = 60.0


class RuntimeFailedError(Exception):
    pass


def file_source(path: str, fmt: str | None, command: SubmitCommand) -> FileSource:
    return FileSource(
        path, fmt, allowed_fields=allowed_fields(command.entity_type, command.action_type, command.match_by)
    )


def checked_file(command: SubmitCommand, path: str, fmt: str | None) -> tuple[SubmitCommand, FileSource, InputScan]:
    """The command and the file, checked (the file read once): raises on bad input
    before any store is opened, so bad input creates nothing, not even a data dir."""
    command = checked_command(command)
    source = file_source(path, fmt, command)
    return command, source, source.scan()


def create_action(
    container: Container, command: SubmitCommand, source: InputSource, scan: InputScan | None = None
) -> tuple[UUID, bool]:
    """Check everything, then record Created. Raises before creating anything on bad input."""
    command = checked_command(command)
    return container.submission().create(command, source, scan or source.scan())


def run_to_completion(
    container: Container,
    action_id: UUID,
    source: InputSource | None,
    *,
    workers: int,
    on_progress: ProgressCallback,
    resuming: bool = False,
    projector_in_process: bool = False,
) -> ActionView:
    """Queue what is not queued yet, process every unfinished chunk, wait for the end."""
    if container.settings.transport != "inprocess":
        return _run_on_services(container, action_id, source, on_progress, resuming=resuming)
    with EmbeddedRuntime(container, workers, projector_in_process=projector_in_process) as runtime:
        action = container.events.get_action(action_id)
        if action.total is None and source is not None:
            runtime.queue_input(action_id, source)
        return _wait(container, runtime, action_id, on_progress, redispatch=resuming)


def _run_on_services(
    container: Container,
    action_id: UUID,
    source: InputSource | None,
    on_progress: ProgressCallback,
    *,
    resuming: bool,
) -> ActionView:
    action = container.events.get_action(action_id)
    if action.total is None and source is not None:
        # Resumable by construction: after a fault it goes on from the chunks stored.
        queue_input = functools.partial(container.submission().queue_input, action_id, source)
        container.faults.retrying("storing the input", queue_input, threading.Event())
    if resuming:
        # Messages of a crashed run may be gone (purged, dead-lettered): publish every
        # chunk without outcomes again; workers skip the ones done meanwhile.
        _redispatch_unfinished(container, action_id)
    return _wait_for_services(container, action_id, on_progress)


def _wait_for_services(container: Container, action_id: UUID, on_progress: ProgressCallback) -> ActionView:
    key = str(action_id)
    last_change, last_seen, warned = time.monotonic(), None, False
    never = threading.Event()  # Ctrl-C ends the wait
    while True:
        # A read-model store that is down is waited out (said once), like the services do.
        view = container.faults.retrying("watching the action", lambda: container.read_models.get_action(key), never)
        on_progress(view)
        if view is not None and view.status in FINAL_STATUSES:
            return view
        seen = None if view is None else (view.status, view.processed, view.chunks_done)
        if seen != last_seen:
            last_change, last_seen = time.monotonic(), seen
        elif not warned and time.monotonic() - last_change > STALL_WARNING_SECONDS:
            warned = True
            log.warning(
                "no progress on action %s for %.0fs: are `bulkactions relay`, `worker` and `projector` running?",
                key,
                STALL_WARNING_SECONDS,
            )
        time.sleep(0.2)


def _redispatch_unfinished(container: Container, action_id: UUID) -> None:
    """After a crash the in-process queue is gone: publish again every chunk that has no
    outcomes yet (a chunk that is done anyway is recognised and skipped)."""
    completer = container.completer()
    unfinished = completer.unfinished_chunks(action_id)
    if unfinished:
        messages = [chunk_message(str(action_id), n) for n in unfinished]
        publish = functools.partial(container.transport.publish, CHUNKS_QUEUE, messages)
        container.faults.retrying("publishing the unfinished chunks", publish, threading.Event())
    elif unfinished == []:
        completer.complete_if_done(action_id)


def _wait(
    container: Container, runtime: EmbeddedRuntime, action_id: UUID, on_progress: ProgressCallback, *, redispatch: bool
) -> ActionView:
    key = str(action_id)
    while True:
        if redispatch and runtime.queueing_done():
            # Resuming: once the whole input is stored, publish every unfinished chunk.
            _redispatch_unfinished(container, action_id)
            redispatch = False
        view = container.read_models.get_action(key)
        on_progress(view)
        if view is not None and view.status in FINAL_STATUSES:
            return view
        if runtime.queueing_failed():
            raise RuntimeFailedError(f"storing the input failed (see above); `bulkactions resume {key}` retries")
        if not runtime.projector_alive() or not all(t.is_alive() for t in runtime.threads):
            raise RuntimeFailedError("a background worker stopped unexpectedly; run `bulkactions resume` to finish")
        time.sleep(0.1)
