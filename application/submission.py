"""Submit a bulk action: check the command and the input, spend quota, record Created,
then store the input as chunks (``ChunkQueued``) and close it with ``InputQueued``.

Nothing is created until the whole input has been read once and found usable, so bad
input never leaves a half-created action behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID, uuid4

from application.columns import ColumnRequest
from application.event_store import ActionNotFoundError, BulkActionLog
from application.ports.inputs import (
    DEFAULT_READ,
    InputFiles,
    InputRecord,
    InputScan,
    InputSource,
    KeyIndex,
    ReadOptions,
)
from application.ports.quotas import Clock, QuotaExceededError, QuotaGate, QuotaLimits
from application.retry_input import RETRY_LINK_COLUMNS, RetrySource
from application.reversion import RevertSource
from application.webhooks import checked_callback_syntax
from domain.bulk_action import (
    SUBMITTED_ACTIONS,
    TARGETED_ACTIONS,
    ActionStatus,
    ActionType,
    BulkAction,
    BulkChunk,
    action_id_for_key,
)
from domain.entities.base import EntityType
from domain.entities.registry import entity_type as entity_type_named
from domain.errors import InvalidMatchFieldError, UnknownActionTypeError

log = logging.getLogger(__name__)

# Chunks stored per transaction while storing an input: fewer commits, bounded memory.
CHUNKS_PER_SAVE = 4
DEFAULT_CHUNK_SIZE = 1000
MAX_CHUNK_SIZE = 10_000


MAX_IDEMPOTENCY_KEY = 200


@dataclass(frozen=True, slots=True)
class SubmitCommand:
    account_id: str
    entity_type: str
    action_type: str
    match_by: str | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    # A retry with the same key (same account) names the same action; see Submission.create.
    idempotency_key: str | None = None
    # Who submits it (application.actors), recorded in Created for the audit trail.
    actor: dict[str, Any] | None = None
    # Where the final status is POSTed (application/webhooks.py); None: nowhere.
    callback_url: str | None = None
    # Decide every record, change nothing (application.dry_run).
    dry_run: bool = False
    # How its input is read (column mapping, dropped columns, encoding, delimiter, sheet);
    # kept with the source (``source["read"]``) so that resume reads it the same way.
    read: ReadOptions = DEFAULT_READ
    # Create the entities records link to that do not exist (domain.links); without it
    # records are linked to stored entities only.
    link_companies: bool = False

    @property
    def action_id(self) -> UUID | None:
        return action_id_for_key(self.account_id, self.idempotency_key) if self.idempotency_key else None


@dataclass(frozen=True, slots=True)
class CheckedInput:
    """A command and its input file, both checked (the file read once)."""

    command: SubmitCommand
    source: InputSource
    scan: InputScan


@dataclass(frozen=True, slots=True)
class PendingInput:
    """An accepted input that is not (wholly) stored as chunks yet: the file it is in
    (None for a revert, whose input is its original's outcomes), and the command it is
    read with."""

    action_id: UUID
    command: SubmitCommand
    path: str | None
    format: str | None
    retry: bool = False  # a retry's file: corrected failed rows, each naming its row


@dataclass(frozen=True, slots=True)
class Submitted:
    action_id: UUID
    created: bool  # False: the idempotency key named an action that already exists
    status: str


class InputChangedError(Exception):
    """A resumed action's input file is gone or differs from the one first read."""


class InvalidCommandError(ValueError):
    """A submission whose own words cannot be used (not its input, which is checked apart)."""


class IdempotencyKeyError(InvalidCommandError):
    """An idempotency key that is blank or too long."""


class IdempotencyKeyReusedError(IdempotencyKeyError):
    """An idempotency key already names an action made by a different request."""


def checked_command(command: SubmitCommand) -> SubmitCommand:
    """Refuse unknown entity and action types and impossible match fields up front."""
    etype = entity_type_named(command.entity_type)
    action = next((a for a in SUBMITTED_ACTIONS if a.value == command.action_type), None)
    if action is None:
        known = ", ".join(a.value for a in SUBMITTED_ACTIONS)
        raise UnknownActionTypeError(f"unknown action {command.action_type!r} (known: {known})")
    match_by = command.match_by
    if action in TARGETED_ACTIONS:
        match_by = match_by or etype.unique_field
        if match_by not in ("id", etype.unique_field):
            allowed = f"'id' or {etype.unique_field!r}"
            raise InvalidMatchFieldError(
                f"{action.value.upper()} of {etype.name} matches by {allowed}, not {match_by!r}"
            )
    elif match_by not in (None, etype.unique_field):
        raise InvalidMatchFieldError(f"{action.value.upper()} of {etype.name} matches by {etype.unique_field!r} only")
    if not 1 <= command.chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk size must be between 1 and {MAX_CHUNK_SIZE}")
    _text(command.account_id, "the account")
    key = command.idempotency_key
    if key is not None:
        _text(key, "the idempotency key")
    if key is not None and not (key.strip() and len(key) <= MAX_IDEMPOTENCY_KEY):
        raise IdempotencyKeyError(f"an idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY} characters, not blank")
    callback = None if command.callback_url is None else checked_callback_syntax(command.callback_url)
    if command.link_companies and (not etype.links or action is ActionType.DELETE):
        raise InvalidCommandError(
            f"link_companies applies to inserts, updates and upserts of contacts, not a {action.value} of {etype.name}"
        )
    return SubmitCommand(
        command.account_id,
        etype.name,
        action.value,
        match_by,
        command.chunk_size,
        key,
        command.actor,
        callback,
        command.dry_run,
        command.read,
        command.link_companies,
    )


def _text(value: str, what: str) -> None:
    """Words stored in events must be text: a command-line argument that is not UTF-8
    arrives with lone surrogates, which no JSON encoder can store."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidCommandError(f"{what} {value!r} is not valid UTF-8 text") from None


def allowed_fields(entity_type: str, action_type: str, match_by: str | None) -> frozenset[str]:
    """Columns a file may have: the entity's fields, plus ``id`` for updates and
    deletes by id (a delete reads only its match field: an export of the entities to
    delete may be given as it is)."""
    fields = entity_type_named(entity_type).field_names()
    return fields | {"id"} if action_type in TARGETED_ACTIONS and match_by == "id" else fields


def open_input(
    files: InputFiles,
    command: SubmitCommand,
    path: str,
    fmt: str | None,
    name: str | None = None,
    *,
    retry: bool = False,
) -> InputSource:
    """The command's input file, read with the columns its entity and action allow;
    ``name`` is what the user called it, where the file on disk is a copy. A retry's
    file (``retry``) also has the columns of the failed rows' export, which link each
    record to the row it corrects (``application.retry_input``)."""
    fields = allowed_fields(command.entity_type, command.action_type, command.match_by)
    source = files.open(path, fmt, fields | RETRY_LINK_COLUMNS if retry else fields, command.read)
    if name is not None:
        source.name = name
    return RetrySource(source) if retry else source


def checked_input(files: InputFiles, command: SubmitCommand, path: str, fmt: str | None) -> CheckedInput:
    """The command and its file, checked (the file read once): raises on bad input
    before any store is needed, so bad input creates nothing."""
    command = checked_command(command)
    source = open_input(files, command, path, fmt)
    return CheckedInput(command, source, source.scan())


def record_key(
    etype: type[EntityType], action_type: str, match_by: str | None, data: dict[str, Any] | None
) -> str | None:
    """What a record targets: its normalised unique value, or its id for UPDATE by id.

    One input may name each target once: a later record naming the same target is
    skipped as a duplicate of the first. This keeps results independent of the order
    in which parallel workers process chunks (no later row silently winning a key,
    no earlier row's update applied after a later one's).
    """
    if data is None:
        return None
    if action_type in TARGETED_ACTIONS and match_by == "id":
        target = data.get("id")
        return None if target in (None, "") else f"id:{target}"
    raw = data.get(etype.unique_field)
    if raw is None or raw == "":
        return None
    key = etype.normalise_unique(raw)
    return None if isinstance(key, list) else key


class Submission:
    def __init__(
        self,
        events: BulkActionLog,
        quota: QuotaGate,
        limits: QuotaLimits,
        clock: Clock,
        key_index: Callable[[], KeyIndex],
        files: InputFiles,
        check_callback: Callable[[str, str], None] | None = None,
    ) -> None:
        # (account id, callback URL): raises unless the URL may be called for it.
        self.check_callback = check_callback
        self.events = events
        self.quota = quota
        self.limits = limits
        self.clock = clock
        self.key_index = key_index
        self.files = files

    def submit_file(
        self,
        command: SubmitCommand,
        path: str,
        fmt: str | None,
        *,
        name: str | None = None,
        scan: InputScan | None = None,
        limits: QuotaLimits | None = None,
    ) -> Submitted:
        """Check the command and the file (unless ``scan`` says it was read as it was
        written), spend quota, record ``Created``. Storing the input is left to
        ``store_input``, in the background: the id is answered at once."""
        command = checked_command(command)
        source = open_input(self.files, command, path, fmt, name)
        scan = source.scan() if scan is None else _with_requested_mapping(scan, command)
        action_id, created = self.create(command, source, scan, limits)
        if not created:
            return Submitted(action_id, False, self.events.get_action(action_id).status.value)
        return Submitted(action_id, True, ActionStatus.QUEUEING.value)

    def create(
        self, command: SubmitCommand, source: InputSource, scan: InputScan, limits: QuotaLimits | None = None
    ) -> tuple[UUID, bool]:
        """Record ``Created``. Returns the id and False if it already existed (same key).

        ``limits`` are the account's own quota limits (default: the platform's)."""
        action_id = command.action_id or uuid4()
        existing = self._existing(action_id)
        if existing is not None:
            _same_request_or_refuse(existing, command, source.format, scan)
            return existing.id, False
        if command.callback_url is not None and self.check_callback is not None:
            self.check_callback(command.account_id, command.callback_url)
        limits = limits or self.limits
        if scan.total > limits.records_per_day:  # no wait would let it in: say so, with no time to retry
            raise QuotaExceededError(
                "records_per_day",
                f"{scan.total} records can never fit account {command.account_id}'s {limits.records_per_day}"
                f" records per 24 hours; send at most {limits.records_per_day} records per action",
                retry_after_seconds=None,
            )
        self.quota.reserve(command.account_id, str(action_id), scan.total, limits, self.clock.now())
        source_info = {**source.describe(), "sha256": scan.sha256, "size": scan.size}
        action = BulkAction.submit(
            action_id,
            command.account_id,
            command.entity_type,
            command.action_type,
            command.match_by,
            source_info,
            command.chunk_size,
            scan.total,
            command.actor,
            command.callback_url,
            dry_run=command.dry_run,
            column_mapping=scan.columns,
            link_companies=command.link_companies,
        )
        try:
            created = self.events.create_action(action)
        except BaseException:
            self._release_quietly(command.account_id, action_id)
            raise
        if not created:
            # The same key was submitted concurrently: only the same request may share it.
            _same_request_or_refuse(self.events.get_action(action_id), command, source.format, scan)
            return action_id, False
        return action_id, True

    def _release_quietly(self, account_id: str, action_id: UUID) -> None:
        """Give back the quota of an action that could not be recorded. If the quota
        store fails too (the same full disk) the reservation stays, holding one active
        slot of the account: said in the log, with the action id."""
        try:
            self.quota.release(account_id, str(action_id))
        except Exception:
            log.error("could not release the quota reserved for unrecorded action %s of %s", action_id, account_id)

    def _existing(self, action_id: UUID) -> BulkAction | None:
        try:
            return self.events.get_action(action_id)
        except ActionNotFoundError:
            return None

    def pending_source(self, pending: PendingInput) -> InputSource:
        """Where a pending input is read from: its file, or (a revert, ``path`` None) the
        original's outcomes."""
        if pending.path is None or pending.format is None:
            return self._source_of(self.events.get_action(pending.action_id))
        return open_input(self.files, pending.command, pending.path, pending.format, retry=pending.retry)

    def store_pending(self, pending: PendingInput) -> int:
        """Store an accepted input from where it waits (see ``store_input``)."""
        return self.store_input(pending.action_id, self.pending_source(pending))

    def store_input(self, action_id: UUID, source: InputSource | None) -> int:
        """Store the input as chunks; chunks already stored (a resume) are skipped.
        ``source`` may be None for an action whose input is not a file (a revert reads
        its original's outcomes).

        Returns the number of records. Records ``InputQueued`` at the end.
        """
        action = self.events.get_action(action_id)
        if action.total is not None:
            return action.total
        source = source or self._source_of(action)
        expected = action.source.get("sha256")
        if action.source.get("kind") == "file" and expected is not None:
            try:
                scan = source.scan()
            except Exception as exc:
                raise InputChangedError(f"cannot re-read the input of action {action_id}: {exc}") from exc
            if scan.sha256 != expected:
                raise InputChangedError(f"the input file of action {action_id} has changed since it was submitted")
        already = self._stored_prefix(action_id)
        etype = entity_type_named(action.entity_type)
        index = self.key_index()
        total = 0
        pending: list[BulkChunk] = []
        chunk_no = 0
        try:
            for chunk_no, first_row, records in _chunks(source.records(), action.chunk_size):
                total += len(records)
                keyed = [
                    (key, r.row)
                    for r in records
                    if (key := record_key(etype, action.action_type, action.match_by, r.data)) is not None
                ]
                first_rows = index.first_rows(keyed)  # fed for skipped chunks too, on resume
                if chunk_no < already:
                    continue
                stored = [_stored(r, first_rows.get(r.row)) for r in records]
                pending.append(BulkChunk.queue(action_id, chunk_no, first_row, stored))
                if len(pending) >= CHUNKS_PER_SAVE:
                    self._save_chunks(action_id, pending)
                    pending = []
            if pending:
                self._save_chunks(action_id, pending)
        finally:
            index.close()
        action = self.events.get_action(action_id)
        if action.is_finished:
            return total
        action.mark_input_queued(total, chunk_no + 1 if total else 0)
        self.events.save_action(action)
        return total

    def _source_of(self, action: BulkAction) -> InputSource:
        if action.reverts is None:
            raise InputChangedError(f"action {action.id} needs its input file to go on")
        return RevertSource(self.events, self.events.get_action(action.reverts))

    def _save_chunks(self, action_id: UUID, chunks: list[BulkChunk]) -> None:
        if self.events.get_action(action_id).cancelled:
            return
        self.events.store_chunks(chunks)

    def _stored_prefix(self, action_id: UUID) -> int:
        """How many chunks are already stored: chunks are saved in order, so a prefix."""
        count = 0
        while self.events.chunk_queued(action_id, count) is not None:
            count += 1
        return count


def _same_request_or_refuse(action: BulkAction, command: SubmitCommand, fmt: str, scan: InputScan) -> None:
    """An idempotency key names one request: the same command over the same input, read
    the same way."""
    then = (
        action.entity_type,
        action.action_type,
        action.match_by,
        action.chunk_size,
        action.callback_url,
        action.dry_run,
        action.source.get("read"),
        action.link_companies,
    )
    now = (
        command.entity_type,
        command.action_type,
        command.match_by,
        command.chunk_size,
        command.callback_url,
        command.dry_run,
        command.read.as_stored() or None,
        command.link_companies,
    )
    if then != now or (action.source.get("format"), action.source.get("sha256")) != (fmt, scan.sha256):
        raise IdempotencyKeyReusedError(
            f"the idempotency key {command.idempotency_key!r} was used for a different request"
            f" (action {action.id}); use a new key"
        )


def _with_requested_mapping(scan: InputScan, command: SubmitCommand) -> InputScan:
    """A scan made as the input was written (records of a JSON body, which have no
    header) records the mapping as the command asked for it."""
    if scan.columns is not None:
        return scan
    fields = allowed_fields(command.entity_type, command.action_type, command.match_by)
    return replace(scan, columns=ColumnRequest(command.read, fields).stored_mapping())


def _stored(record: InputRecord, duplicate_of_row: int | None) -> dict[str, Any]:
    stored = record.as_stored()
    if duplicate_of_row is not None:
        stored["duplicate_of_row"] = duplicate_of_row
    return stored


def _chunks(records: Iterator[InputRecord], size: int) -> Iterator[tuple[int, int, list[InputRecord]]]:
    batch: list[InputRecord] = []
    chunk_no = 0
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield chunk_no, batch[0].row, batch
            chunk_no += 1
            batch = []
    if batch:
        yield chunk_no, batch[0].row, batch
