"""Running an import or a resume to completion.

Embedded default (``BULK_TRANSPORT=inprocess``): this process runs the relay, workers
and projector itself. Production (a broker): the relay, workers and projector are
separate, already running processes; this one only stores the input (the relay
publishes it from the event log) and watches the read model the projector keeps.
What an interrupted action needs is the application's to say (``ActionRecovery``).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from uuid import UUID

from api.runtime import EmbeddedRuntime
from application.ports.inputs import InputSource
from application.ports.read_models import ActionView
from application.queries import is_final
from infrastructure.bootstrap import ApplicationServices, Container

ProgressCallback = Callable[[ActionView | None], None]

log = logging.getLogger(__name__)
# Warn (once) when the read model shows no progress for this long: the relay,
# workers or projector may not be running.
STALL_WARNING_SECONDS = 60.0


class RuntimeFailedError(Exception):
    pass


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
    """Store what is not stored yet, process every unfinished chunk, wait for the end."""
    if container.settings.transport != "inprocess":
        return _run_on_services(container, action_id, source, on_progress, resuming=resuming)
    with EmbeddedRuntime(container, workers, projector_in_process=projector_in_process) as runtime:
        if container.events.get_action(action_id).total is None:
            runtime.store_input(action_id, source)  # None: a revert, which reads its original's outcomes
        view = _wait(container, runtime, action_id, on_progress, redispatch=resuming)
    first_webhook_attempt(container.services)
    return view


def first_webhook_attempt(services: ApplicationServices) -> None:
    """Make the first attempt of a finished action's webhook (if it has one) before a
    command ends; failed attempts are made again by whatever runs the outbox next
    (`bulkactions serve`, `bulkactions webhooks`), from the stored delivery."""
    try:
        services.send_webhooks()
    except Exception as exc:  # the delivery is scheduled or will be: never fail the import for it
        log.warning("webhook: first attempt not made now (%s: %s); it will be made later", type(exc).__name__, exc)


def _run_on_services(
    container: Container,
    action_id: UUID,
    source: InputSource | None,
    on_progress: ProgressCallback,
    *,
    resuming: bool,
) -> ActionView:
    services = container.services
    if source is not None or container.events.get_action(action_id).reverts is not None:
        # Resumable by construction: after a fault it goes on from the chunks stored.
        store_input = functools.partial(services.submission.store_input, action_id, source)
        container.faults.retrying("storing the input", store_input, threading.Event())
    if resuming:
        # Messages of a crashed run may be gone (purged, dead-lettered); a broker that is
        # down is waited out.
        redispatch = functools.partial(services.recovery.redispatch_unfinished, action_id)
        container.faults.retrying("publishing the unfinished chunks", redispatch, threading.Event())
    return _wait_for_services(container, action_id, on_progress)


def _wait_for_services(container: Container, action_id: UUID, on_progress: ProgressCallback) -> ActionView:
    queries = container.services.queries
    last_change, last_seen, warned = time.monotonic(), None, False
    never = threading.Event()  # Ctrl-C ends the wait
    while True:
        # A read-model store that is down is waited out (said once), like the services do.
        view = container.faults.retrying("watching the action", lambda: queries.current_view(action_id), never)
        on_progress(view)
        if view is not None and is_final(view.status):
            return view
        seen = None if view is None else (view.status, view.processed, view.chunks_done)
        if seen != last_seen:
            last_change, last_seen = time.monotonic(), seen
        elif not warned and time.monotonic() - last_change > STALL_WARNING_SECONDS:
            warned = True
            log.warning(
                "no progress on action %s for %.0fs: are `bulkactions relay`, `worker` and `projector` running?",
                action_id,
                STALL_WARNING_SECONDS,
            )
        time.sleep(0.2)


def _wait(
    container: Container, runtime: EmbeddedRuntime, action_id: UUID, on_progress: ProgressCallback, *, redispatch: bool
) -> ActionView:
    services = container.services
    while True:
        if redispatch and runtime.input_stored():
            # Resuming: once the whole input is stored, publish every unfinished chunk
            # (the in-process queue of the interrupted run is gone).
            services.recovery.redispatch_unfinished(action_id)
            redispatch = False
        view = services.queries.current_view(action_id)
        on_progress(view)
        if view is not None and is_final(view.status):
            return view
        if runtime.storing_failed():
            raise RuntimeFailedError(f"storing the input failed (see above); `bulkactions resume {action_id}` retries")
        if not runtime.projector_alive() or not all(t.is_alive() for t in runtime.threads):
            raise RuntimeFailedError("a background worker stopped unexpectedly; run `bulkactions resume` to finish")
        time.sleep(0.1)
