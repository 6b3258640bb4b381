"""Getting a submission's input onto disk, and queueing it in the background.

Every input, an uploaded file (``api.http.multipart``) or the records of a JSON body
(``split_json_body``), is streamed into a spool file in the process's spool folder
(``api.http.spool``) while its bytes are counted (413 past the cap), so nothing is
held whole in memory and a restarted server can resume queueing from the same file
(``resume_unfinished``, which then sweeps what gone processes left). Queueing
(``Submission.queue_input``) runs on a small thread pool after the 202 has gone out;
the spool file is removed once the input is safely in the event store.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

import orjson

from api.http import spool
from api.http.spool import spool_path
from api.jobs import _redispatch_unfinished, file_source
from application.ports.inputs import InputError, InputScan
from application.ports.read_models import ActionFilter, ActionView
from application.submission import SubmitCommand
from domain.bulk_action import ActionStatus
from infrastructure.bootstrap import Container
from infrastructure.files.json_stream import JsonTextStream, read_object_streaming
from infrastructure.files.repeated_keys import DUPLICATE_FIELD, repeated_key_message

log = logging.getLogger(__name__)


@dataclass
class JsonBody:
    """A JSON body split in two: its small members, and its ``records`` written one per
    line to a JSON-lines spool file (``records_path``), the shape an uploaded JSON-lines
    file takes, so both are queued the same way."""

    members: dict[str, Any]
    records_path: Path
    records: int
    has_records_array: bool
    scan: InputScan  # of the JSON-lines file, counted and hashed as it was written
    errors: list[dict[str, str]] = field(default_factory=list)


_MAX_RECORD_ERRORS = 20


def split_json_body(raw_path: Path, spool_folder: Path) -> JsonBody:
    """Stream the spooled body: the record array never in memory, one record at a time.
    A record that is not an object, or that repeats a key, is an error of the request
    (records are objects by the schema); up to 20 are named, after a member (such as
    ``options``) that repeats a key. Malformed JSON, and any value the event store
    cannot hold (see ``infrastructure.files.storable``), is an ``InputError``."""
    records_path = spool_path(spool_folder, "jsonl")
    count = written = 0
    sha = hashlib.sha256()
    errors: list[dict[str, str]] = []

    try:
        with records_path.open("wb") as out, raw_path.open(encoding="utf-8-sig", errors="strict", newline="") as text:
            stream = JsonTextStream(text, "the body")

            def keep(record: Any) -> None:
                nonlocal count, written
                if type(record) is dict and stream.repeated_key is None:
                    line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
                    out.write(line)
                    sha.update(line)
                    written += 1
                elif len(errors) < _MAX_RECORD_ERRORS:
                    errors.append({"location": f"records.{count}", **_record_problem(record, stream.repeated_key)})
                count += 1

            body = read_object_streaming(stream, "records", keep)
            size = out.tell()
    except UnicodeDecodeError as exc:
        records_path.unlink(missing_ok=True)
        # exc.start counts from the decoder's current block, not the body: no offset
        raise InputError(f"the body is not valid UTF-8 (byte 0x{exc.object[exc.start]:02x})") from None
    except BaseException:
        records_path.unlink(missing_ok=True)
        raise
    scan = InputScan(total=written, sha256=sha.hexdigest(), size=size)
    repeats = [
        {"location": member, "message": repeated_key_message(key), "code": DUPLICATE_FIELD}
        for member, key in body.repeated_keys.items()
    ]
    return JsonBody(body.members, records_path, count, body.streamed, scan, repeats + errors)


def _record_problem(record: Any, repeated: str | None) -> dict[str, str]:
    if isinstance(record, dict) and repeated is not None:
        return {"message": repeated_key_message(repeated), "code": DUPLICATE_FIELD}
    return {"message": "Input should be a valid dictionary", "code": "dict_type"}


class Queuer(Protocol):
    """Takes an accepted action's spooled input to be stored as chunks in the background."""

    def queue(self, action_id: UUID, command: SubmitCommand, path: Path, fmt: str) -> None: ...

    def close(self) -> None: ...


class InputQueuer:
    """Queues inputs after the 202 has been sent, on a small pool of threads."""

    def __init__(self, container: Container, threads: int = 2) -> None:
        self.container = container
        self.threads = threads
        self.pool: ThreadPoolExecutor | None = None
        self._running: dict[UUID, Future[None]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()  # set by close: give up waiting out a fault

    def queue(self, action_id: UUID, command: SubmitCommand, path: Path, fmt: str) -> None:
        with self._lock:
            if action_id in self._running and not self._running[action_id].done():
                return
            if self.pool is None:
                self.pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="queue-input")
            self._running[action_id] = self.pool.submit(self._queue, action_id, command, path, fmt)

    def _queue(self, action_id: UUID, command: SubmitCommand, path: Path, fmt: str) -> None:
        source = file_source(str(path), fmt, command)
        queue_input = functools.partial(self.container.submission().queue_input, action_id, source)
        try:
            # Resumable, so an infrastructure fault (a full disk) is waited out.
            self.container.faults.retrying("storing an input", queue_input, self._stop)
        except Exception:
            log.exception("queueing the input of action %s failed; a restart resumes it", action_id)
            return
        path.unlink(missing_ok=True)

    def wait(self, action_id: UUID, timeout: float | None = None) -> None:
        with self._lock:
            future = self._running.get(action_id)
        if future is not None:
            future.result(timeout)

    def close(self) -> None:
        """Wait for the inputs being queued; a later ``queue`` starts a new pool."""
        with self._lock:
            pool, self.pool = self.pool, None
        self._stop.set()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=False)
        self._stop = threading.Event()


def resume_unfinished(container: Container, queuer: InputQueuer, *, redispatch: bool, created_before: str) -> int:
    """After a restart: queue the rest of every half-queued input from its spool file,
    and (in-process transport, whose queue died with the process) publish again every
    chunk that has no outcomes yet. Only actions created before ``created_before`` (this
    run's start): newer ones are being queued by the API that took them. Then remove
    the spool files of gone processes that no unfinished action needs.
    Returns how many actions were resumed."""
    container.projector(completing=False).catch_up()
    resumed = 0
    for status in (ActionStatus.QUEUEING, ActionStatus.PROCESSING):
        for view in _actions(container, ActionFilter(status=status.value, created_to=created_before)):
            _resume_one(container, queuer, UUID(view.action_id), redispatch=redispatch)
            resumed += 1
    spool.sweep(container.settings.data_dir / "spool", lambda: _inputs_needed(container))
    return resumed


def _actions(container: Container, filt: ActionFilter) -> Iterator[ActionView]:
    before = None
    while page := container.read_models.list_actions(filt, before=before, limit=200):
        before = (page[-1].created_at, page[-1].action_id)
        yield from page


def _inputs_needed(container: Container) -> Iterator[Path]:
    """The spool files of every action whose input is not stored yet (whoever took it)."""
    container.projector(completing=False).catch_up()
    for view in _actions(container, ActionFilter(status=ActionStatus.QUEUEING.value)):
        action = container.events.get_action(UUID(view.action_id))
        if action.total is None and action.source.get("kind") == "file":
            yield Path(action.source["path"])


def _resume_one(container: Container, queuer: InputQueuer, action_id: UUID, *, redispatch: bool) -> None:
    action = container.events.get_action(action_id)
    if action.is_finished:
        return
    info = action.source
    if action.total is None:
        if info.get("kind") != "file" or not Path(info.get("path", "")).exists():
            log.error("action %s cannot resume: its input is gone; cancel it", action_id)
            return
        command = SubmitCommand(
            action.account_id,
            action.entity_type,
            action.action_type,
            action.match_by,
            action.chunk_size,
        )
        queuer.queue(action_id, command, Path(info["path"]), info["format"])
        if redispatch:
            queuer.wait(action_id)
    if redispatch:
        _redispatch_unfinished(container, action_id)
