"""Getting a submission's input onto disk, and queueing it in the background.

Every input, an uploaded file or the records of a JSON body, is streamed into a spool
file under ``<data_dir>/spool`` while its bytes are counted (413 past the cap), so
nothing is held whole in memory and a restarted server can resume queueing from the
same file (``resume_unfinished``). Queueing (``Submission.queue_input``) runs on a
small thread pool after the 202 has gone out; the spool file is removed once the
input is safely in the event store.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
from collections.abc import AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol
from uuid import UUID, uuid4

import orjson
from python_multipart.multipart import MultipartParser, parse_options_header

from api.http.problems import ProblemError
from api.jobs import _redispatch_unfinished, file_source
from application.ports import ActionFilter, InputError, InputScan
from application.submission import SubmitCommand
from domain.bulk_action import ActionStatus
from infrastructure.bootstrap import Container
from infrastructure.files.json_stream import JsonTextStream, read_object_streaming

log = logging.getLogger(__name__)

FORM_FIELDS = ("entity", "action", "match_by", "chunk_size", "format")
_MAX_FIELD_BYTES = 1024
_CONTENT_TYPES = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/x-jsonlines": "jsonl",
    "application/json": "json",
}
_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}


def too_large(cap: int) -> ProblemError:
    return ProblemError(413, "too-large", "Content Too Large", f"the request body is larger than {cap} bytes")


def spool_path(data_dir: Path, suffix: str) -> Path:
    folder = data_dir / "spool"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{uuid4().hex}.{suffix}"


async def spool_capped(chunks: AsyncIterator[bytes], path: Path, cap: int) -> None:
    """A request body written to ``path`` as it arrives, refused with 413 (and the file
    removed) as soon as it passes the cap."""
    size = 0
    try:
        with path.open("wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > cap:
                    raise too_large(cap)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


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


def split_json_body(raw_path: Path, data_dir: Path) -> JsonBody:
    """Stream the spooled body: the record array never in memory, one record at a time.
    A record that is not an object is an error of the request (records are objects by
    the schema); up to 20 are named. Malformed JSON is an ``InputError``."""
    records_path = spool_path(data_dir, "jsonl")
    count = written = 0
    sha = hashlib.sha256()
    errors: list[dict[str, str]] = []

    try:
        with records_path.open("wb") as out, raw_path.open(encoding="utf-8-sig", errors="strict", newline="") as text:

            def keep(record: Any) -> None:
                nonlocal count, written
                if isinstance(record, dict):
                    line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
                    out.write(line)
                    sha.update(line)
                    written += 1
                elif len(errors) < _MAX_RECORD_ERRORS:
                    errors.append(
                        {
                            "location": f"records.{count}",
                            "message": "Input should be a valid dictionary",
                            "code": "dict_type",
                        }
                    )
                count += 1

            members, streamed = read_object_streaming(JsonTextStream(text, "the body"), "records", keep)
            size = out.tell()
    except UnicodeDecodeError as exc:
        records_path.unlink(missing_ok=True)
        # exc.start counts from the decoder's current block, not the body: no offset
        raise InputError(f"the body is not valid UTF-8 (byte 0x{exc.object[exc.start]:02x})") from None
    except BaseException:
        records_path.unlink(missing_ok=True)
        raise
    scan = InputScan(total=written, sha256=sha.hexdigest(), size=size)
    return JsonBody(members, records_path, count, streamed, scan, errors)


class UploadSpooler:
    """Streams a multipart/form-data body: small form fields kept, the ``file`` part
    written to a spool file; the whole body is counted against the cap."""

    def __init__(self, data_dir: Path, content_type: str, cap: int) -> None:
        kind, options = parse_options_header(content_type)
        boundary = options.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise ProblemError(
                415,
                "unsupported-media-type",
                "Unsupported Media Type",
                "send application/json or multipart/form-data with a boundary",
            )
        self.data_dir, self.cap, self.size = data_dir, cap, 0
        self.fields: dict[str, str] = {}
        self.path: Path | None = None
        self.filename: str | None = None
        self.file_type: str | None = None
        self._out: IO[bytes] | None = None
        self._headers: dict[str, bytes] = {}
        self._field: tuple[str, bytearray] | None = None
        self._header_name = b""
        self._header_value = b""
        self._error: ProblemError | None = None
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_header_field": self._header_field,
                "on_header_value": self._header_val,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_done,
            },
        )

    async def consume(self, chunks: AsyncIterator[bytes]) -> None:
        try:
            async for chunk in chunks:
                self.size += len(chunk)
                if self.size > self.cap:
                    raise too_large(self.cap)
                self.parser.write(chunk)
                if self._error is not None:
                    raise self._error
            self.parser.finalize()
        except ProblemError:
            self.discard()
            raise
        except Exception as exc:  # python-multipart's parse errors: a malformed body
            self.discard()
            raise ProblemError(400, "malformed-body", "Bad Request", f"malformed multipart body: {exc}") from None
        finally:
            if self._out is not None:
                self._out.close()
                self._out = None
        if self._error is not None:
            self.discard()
            raise self._error

    def discard(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None

    def _part_begin(self) -> None:
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_val(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_name.decode("latin-1").lower()] = self._header_value
        self._header_name, self._header_value = b"", b""

    def _headers_done(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name == "file":
            if self.path is not None:
                self._error = ProblemError(
                    422, "invalid-request", "Invalid Request", "send one file, in the field `file`"
                )
                return
            filename = options.get(b"filename", b"upload").decode("utf-8", "replace")
            self.filename = os.path.basename(filename) or "upload"
            self.file_type = parse_options_header(self._headers.get("content-type", b""))[0].decode("latin-1")
            self.path = spool_path(self.data_dir, "upload")
            self._out = self.path.open("wb")
        elif name in FORM_FIELDS:
            self._field = (name, bytearray())
        else:
            self._error = ProblemError(
                422,
                "invalid-request",
                "Invalid Request",
                f"unknown form field {name!r} (known: file, {', '.join(FORM_FIELDS)})",
            )

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._out is not None:
            self._out.write(data[start:end])
        elif self._field is not None:
            self._field[1].extend(data[start:end])
            if len(self._field[1]) > _MAX_FIELD_BYTES:
                self._error = ProblemError(
                    422,
                    "invalid-request",
                    "Invalid Request",
                    f"form field {self._field[0]!r} is too long",
                )

    def _part_end(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        elif self._field is not None:
            name, value = self._field
            try:
                self.fields[name] = value.decode("utf-8").strip()
            except UnicodeDecodeError:
                self._error = ProblemError(
                    422, "invalid-request", "Invalid Request", f"form field {name!r} is not UTF-8"
                )
            self._field = None

    def file_format(self) -> str:
        """The upload's format: the ``format`` field, else the file name, else its type."""
        declared = self.fields.get("format")
        if declared:
            if declared not in ("csv", "jsonl", "json"):
                raise unsupported(f"unknown format {declared!r} (use csv, jsonl or json)")
            return declared
        suffix = Path(self.filename or "").suffix.lower()
        found = _SUFFIXES.get(suffix) or _CONTENT_TYPES.get(self.file_type or "")
        if found is None:
            raise unsupported(
                f"cannot tell the format of {self.filename!r} ({self.file_type or 'no type'});"
                " send a .csv, .jsonl or .json file, or the form field format"
            )
        return found


def unsupported(detail: str) -> ProblemError:
    return ProblemError(415, "unsupported-media-type", "Unsupported Media Type", detail)


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
    run's start): newer ones are being queued by the API that took them.
    Returns how many actions were resumed."""
    container.projector(completing=False).catch_up()
    resumed = 0
    for status in (ActionStatus.QUEUEING, ActionStatus.PROCESSING):
        before = None
        while page := container.read_models.list_actions(
            ActionFilter(status=status.value, created_to=created_before), before=before, limit=200
        ):
            before = (page[-1].created_at, page[-1].action_id)
            for view in page:
                _resume_one(container, queuer, UUID(view.action_id), redispatch=redispatch)
                resumed += 1
    return resumed


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
