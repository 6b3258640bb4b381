"""The long-running processes of the production stack: ``worker``, ``relay``, ``projector``,
``webhooks``.

Any number of each may run, on any machine, and any may be killed at any time:
- workers compete for chunk messages on RabbitMQ (ack after the outcome events are
  stored; a killed worker's message is redelivered, and the deterministic event
  versions make a second run store nothing twice);
- relays and projectors follow the PostgreSQL notification log and are single-active:
  the one holding a PostgreSQL advisory lock works, the others stand by and take
  over within ``--standby-poll`` seconds of its death (the server frees the lock when
  the holder's connection drops). Their positions are stored with their writes, so a
  takeover resumes where the dead one last committed, and even a brief overlap of
  two active ones (a lock session lost unnoticed for up to 2 s) is harmless: the
  read model refuses a batch that does not start at its stored position, and a chunk
  published twice is recognised by the workers.

SIGTERM or SIGINT stops a process cleanly: a worker finishes and acks the chunk in
hand, a relay or projector finishes its page.
"""

from __future__ import annotations

import functools
import logging
import queue
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from api.chunk_trial import SubprocessChunkTrial, run_trial
from api.process_heap import settle_heap
from application.faults import FaultPolicy, StoreUnavailableError
from infrastructure.bootstrap import ConfigurationError, Container, bootstrap, fault_policy, single_active_lock
from infrastructure.settings import Settings

if TYPE_CHECKING:
    from infrastructure.postgres.positions import SingleActiveLock

log = logging.getLogger(__name__)

RELAY_LOCK = "relay"
PROJECTOR_LOCK = "projector:actions"
WEBHOOKS_LOCK = "webhooks"


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM / SIGINT (a second signal still stops at once).

    A Python signal handler runs in the main thread between two bytecodes, possibly
    while that thread holds the event's own lock (inside ``stop.wait()``) or a logging
    lock: setting the event or logging from the handler then waits on itself forever (a
    projector hung so on SIGTERM). The handler only notes the signal and hands it to a
    thread of its own through a ``SimpleQueue``, whose ``put`` is reentrant."""
    stop = threading.Event()
    received: queue.SimpleQueue[int] = queue.SimpleQueue()
    signalled: list[int] = []

    def set_stop() -> None:
        signum = received.get()
        log.warning("signal %d: stopping after the work in hand", signum)
        stop.set()

    def handle(signum: int, _: FrameType | None) -> None:
        if signalled:
            raise SystemExit(128 + signum)
        signalled.append(signum)
        received.put(signum)

    threading.Thread(target=set_stop, name="stop-on-signal", daemon=True).start()
    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop


def _touch(alive_file: Path | None) -> None:
    """Liveness for container health checks: the file's age says the loop still turns."""
    if alive_file is not None:
        alive_file.touch()


def _settings(data_dir: Path, *, needs_postgres: bool, needs_broker: bool) -> Settings:
    settings = Settings(data_dir=data_dir)
    if needs_postgres and (settings.event_store != "postgres" or not settings.postgres_dsn):
        raise ConfigurationError("this process needs BULK_EVENT_STORE=postgres and BULK_POSTGRES_DSN")
    if needs_broker and (settings.transport != "rabbitmq" or not settings.rabbitmq_url):
        raise ConfigurationError("this process needs BULK_TRANSPORT=rabbitmq and BULK_RABBITMQ_URL")
    return settings


def bootstrap_with_retry(settings: Settings, stop: threading.Event) -> Container | None:
    """Build the container, waiting (with backoff, said once) while a server cannot be
    reached: processes and servers come up together under docker compose or a
    supervisor, and a server may be down when a process starts. None if stopped
    meanwhile. Anything else (a bad setting, a store to migrate) is raised at once."""
    try:
        container = fault_policy(settings).retrying("starting", lambda: bootstrap(settings), stop)
    except StoreUnavailableError:
        return None  # stopped while waiting
    settle_heap()
    return container


def expose_metrics(container: Container, port: int | None, parts: tuple[str, ...], stop: threading.Event) -> None:
    """Serve this process's metrics on ``port`` until ``stop`` (nothing if None), with
    the gauges in ``parts``: "queues" sampled from the transport, the others
    (``StateCollector.PARTS``) read from the stores at scrape time."""
    if port is None:
        return
    from infrastructure.prometheus.metrics import Exposition, StateCollector, start_queue_sampler

    monitoring = container.services.monitoring
    bound, close = Exposition(StateCollector(monitoring, set(parts) - {"queues"})).serve(port)
    click.echo(f"metrics on http://0.0.0.0:{bound}/metrics", err=True)
    if "queues" in parts:
        start_queue_sampler(monitoring, stop)
    threading.Thread(target=lambda: (stop.wait(), close()), name="metrics-stop", daemon=True).start()


def run_worker(
    settings: Settings, consumers: int, stop: threading.Event, alive_file: Path | None, metrics_port: int | None = None
) -> None:
    container = bootstrap_with_retry(settings, stop)
    if container is None:
        return
    expose_metrics(container, metrics_port, ("queues",), stop)
    threads = []
    try:
        for n in range(consumers):
            worker = container.worker(trial=SubprocessChunkTrial(settings))
            thread = threading.Thread(target=worker.run, args=(stop,), name=f"consumer-{n}", daemon=True)
            thread.start()
            threads.append(thread)
        while not stop.is_set():
            _touch(alive_file)
            if not all(t.is_alive() for t in threads):
                raise RuntimeError("a chunk consumer stopped unexpectedly")
            stop.wait(1.0)
        for thread in threads:
            thread.join()
    finally:
        stop.set()
        container.close()


def run_single_active(
    settings: Settings,
    lock_name: str,
    make_step: Callable[[Container], Callable[[], int]],
    stop: threading.Event,
    *,
    poll_seconds: float,
    standby_poll: float,
    alive_file: Path | None,
    metrics: tuple[int | None, tuple[str, ...]] = (None, ()),
) -> None:
    """Stand by until this process holds the lock, then call the step until stopped.

    ``step`` returns how much it did; 0 means caught up, so wait ``poll_seconds``.
    Errors (a database or broker restart) are logged and retried: the loop itself is
    what a supervisor would otherwise have to restart.
    """
    lock = single_active_lock(settings, lock_name)
    container = bootstrap_with_retry(settings, stop)
    if container is None:
        return
    step = make_step(container)
    expose_metrics(container, metrics[0], metrics[1], stop)
    try:
        while not stop.is_set():
            _touch(alive_file)
            if not _acquired(lock, container.faults):
                stop.wait(standby_poll)
                continue
            log.warning("%s: active (holding the %r lock)", lock_name, lock_name)
            _run_while_held(lock, step, container.faults, stop, poll_seconds, alive_file)
    finally:
        lock.release()
        container.close()


def _acquired(lock: SingleActiveLock, faults: FaultPolicy) -> bool:
    """Whether this process holds the lock now; a database that cannot be reached is
    said once per outage (a standby polls every second)."""
    where = f"{lock.name}: taking the lock"
    try:
        held = lock.try_acquire()
    except Exception as exc:
        if not faults.is_infrastructure(exc):
            raise
        faults.episodes.failed(where, exc)
        return False
    faults.episodes.recovered(where)
    return held


def _run_while_held(
    lock: SingleActiveLock,
    step: Callable[[], int],
    faults: FaultPolicy,
    stop: threading.Event,
    poll_seconds: float,
    alive_file: Path | None,
) -> None:
    checked = time.monotonic()
    backoff = 0.5
    while not stop.is_set():
        if time.monotonic() - checked > 2.0:
            # Lost the lock's session (database restart, network): another process may
            # be active now, so stop working until this one holds the lock again.
            if not lock.still_held():
                log.warning("%s: lost the lock; standing by", lock.name)
                lock.release()
                return
            checked = time.monotonic()
            _touch(alive_file)
        try:
            done = step()
            backoff = 0.5
            faults.episodes.recovered(lock.name)
        except Exception as exc:
            if faults.is_infrastructure(exc):
                faults.episodes.failed(lock.name, exc)  # one line per outage, not per try
            else:
                log.exception("%s: step failed; retrying in %.1fs", lock.name, backoff)
            stop.wait(backoff)
            backoff = min(backoff * 2, 10.0)
            continue
        if done == 0:
            stop.wait(poll_seconds)


def _relay_step(container: Container) -> Callable[[], int]:
    return functools.partial(container.relay().run_once, page=1000)


def _projector_step(container: Container) -> Callable[[], int]:
    return functools.partial(container.projector().run_once, page=2000)


def _webhooks_step(container: Container) -> Callable[[], int]:
    return container.webhook_outbox().run_once


def run_webhooks_embedded(settings: Settings, stop: threading.Event, alive_file: Path | None) -> None:
    """The webhook outbox on the embedded default (one machine: no lock to take)."""
    container = bootstrap_with_retry(settings, stop)
    if container is None:
        return
    outbox = container.webhook_outbox()
    try:
        while not stop.is_set():
            _touch(alive_file)
            try:
                done = container.faults.retrying("webhooks", outbox.run_once, stop)
            except StoreUnavailableError:
                return  # stopped during a fault
            if done == 0:
                stop.wait(0.2)
    finally:
        container.close()


_DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="BULK_DATA_DIR",
    default=None,
    help="Embedded state (SQLite entity/read-model files when BULK_DOCUMENT_STORE=sqlite).",
)
_METRICS_PORT = click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    envvar="BULK_METRICS_PORT",
    default=None,
    help="Serve Prometheus metrics on this port (/metrics; 0: any free port, printed).",
)
_ALIVE_FILE = click.option(
    "--alive-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Touched while the main loop turns (for container health checks).",
)


def _data_dir(ctx: click.Context, data_dir: Path | None) -> Path:
    if data_dir is not None:
        return data_dir
    found: Path = (ctx.find_root().obj or {}).get("data_dir") or Path(".bulkactions")
    return found


@click.command()
@click.option(
    "--consumers",
    type=click.IntRange(1, 32),
    default=1,
    show_default=True,
    help="Chunk consumers in this process (each with its own connection).",
)
@click.option(
    "--try-chunk",
    metavar="ACTION_ID:N",
    default=None,
    hidden=True,
    help="Process this one chunk and exit (a dead-lettered chunk's trial, see api/chunk_trial.py).",
)
@_DATA_DIR
@_ALIVE_FILE
@_METRICS_PORT
@click.pass_context
def worker(
    ctx: click.Context,
    consumers: int,
    try_chunk: str | None,
    data_dir: Path | None,
    alive_file: Path | None,
    metrics_port: int | None,
) -> None:
    """Process chunk messages from RabbitMQ until SIGTERM."""
    settings = _settings(_data_dir(ctx, data_dir), needs_postgres=False, needs_broker=True)
    if try_chunk is not None:
        raise SystemExit(run_trial(settings, try_chunk))  # the status is the verdict
    settings = _with_metrics(settings, metrics_port)
    run_worker(settings, consumers, stop_on_signals(), alive_file, metrics_port)


def _with_metrics(settings: Settings, metrics_port: int | None) -> Settings:
    return settings if metrics_port is None else settings.model_copy(update={"metrics": True})


def _single_active_command(
    name: str,
    lock: str,
    step: Callable[[Container], Callable[[], int]],
    *,
    needs_broker: bool,
    summary: str,
    gauges: tuple[str, ...],
) -> click.Command:
    """``relay`` and ``projector``: one loop over a step, active in one process at a
    time (the PostgreSQL lock ``lock``), standbys polling to take over."""

    @click.command(name=name, help=summary)
    @click.option("--poll", "poll_seconds", type=float, default=0.05, show_default=True)
    @click.option(
        "--standby-poll",
        type=float,
        default=1.0,
        show_default=True,
        help=f"Seconds between attempts to take over from the active {name}.",
    )
    @_DATA_DIR
    @_ALIVE_FILE
    @_METRICS_PORT
    @click.pass_context
    def command(
        ctx: click.Context,
        poll_seconds: float,
        standby_poll: float,
        data_dir: Path | None,
        alive_file: Path | None,
        metrics_port: int | None,
    ) -> None:
        settings = _settings(_data_dir(ctx, data_dir), needs_postgres=True, needs_broker=needs_broker)
        run_single_active(
            _with_metrics(settings, metrics_port),
            lock,
            step,
            stop_on_signals(),
            poll_seconds=poll_seconds,
            standby_poll=standby_poll,
            alive_file=alive_file,
            metrics=(metrics_port, gauges),
        )

    return command


relay = _single_active_command(
    "relay",
    RELAY_LOCK,
    _relay_step,
    needs_broker=True,
    summary="Publish queued chunks from the PostgreSQL event log to RabbitMQ (single-active).",
    gauges=("relay",),
)
projector = _single_active_command(
    "projector",
    PROJECTOR_LOCK,
    _projector_step,
    needs_broker=False,
    summary="Keep the read models current from the PostgreSQL event log (single-active).",
    gauges=("projection", "actions"),
)


@click.command()
@click.option("--poll", "poll_seconds", type=float, default=0.2, show_default=True)
@click.option("--standby-poll", type=float, default=1.0, show_default=True)
@_DATA_DIR
@_ALIVE_FILE
@_METRICS_PORT
@click.pass_context
def webhooks(
    ctx: click.Context,
    poll_seconds: float,
    standby_poll: float,
    data_dir: Path | None,
    alive_file: Path | None,
    metrics_port: int | None,
) -> None:
    """Deliver completion webhooks, retrying with backoff (single-active on PostgreSQL).

    `serve` does this itself on the embedded default; run this where no `serve` runs
    the embedded runtime, and in the production stack."""
    settings = Settings(data_dir=_data_dir(ctx, data_dir))
    stop = stop_on_signals()
    if settings.event_store != "postgres":
        run_webhooks_embedded(settings, stop, alive_file)
        return
    run_single_active(
        _with_metrics(settings, metrics_port),
        WEBHOOKS_LOCK,
        _webhooks_step,
        stop,
        poll_seconds=poll_seconds,
        standby_poll=standby_poll,
        alive_file=alive_file,
        metrics=(metrics_port, ()),  # the process's own metrics: Prometheus sees it up
    )
