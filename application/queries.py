"""Queries: what users read about their actions, answered from the read models.

One service for the CLI and the HTTP API, so that both answer the same question the
same way: whose action it is (another account's action is not found), a list with a
cursor, log pages, the result rows of one outcome joined with their input.

The audit trail (one record's history, an action's whole history) is the deliberate
exception to "queries come from read models": it reads the event store itself, so it
shows what was recorded, not a projection of it.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

import orjson

from application.event_store import ActionNotFoundError, BulkActionLog
from application.ports.read_models import ActionFilter, ActionView, LogLine, ReadModelStore
from application.submission import allowed_fields
from domain.bulk_action import ActionStatus, BulkAction

T = TypeVar("T")
FINAL_STATUSES = (ActionStatus.COMPLETED.value, ActionStatus.CANCELLED.value)
_ACTIONS_PAGE = 200
_LOG_PAGE = 5000
_EVERY_ACTION = ActionFilter()


class InvalidCursorError(ValueError):
    """A cursor this service did not give out."""


class InvalidInstantError(ValueError):
    """A time that is not an ISO 8601 date-time."""


class RowNotFoundError(LookupError):
    """A row of an action that has no history (yet)."""

    def __init__(self, action_id: UUID, row: int, total: int | None) -> None:
        super().__init__(f"row {row} of action {action_id}")
        self.action_id, self.row, self.total = action_id, row, total


class RowBeyondTotalError(RowNotFoundError):
    """The action has fewer records than the row asked for."""


class RowNotStoredError(RowNotFoundError):
    """The row's chunk is not stored yet (its input is still being stored)."""


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class ResultRow:
    """One record of an outcome: its log line, the input value of each of the entity's
    fields ("" where it had none), and the rest of its input (what could not be read
    is under ``_unparsed``)."""

    line: LogLine
    values: list[Any]
    other: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ResultRows:
    fields: list[str]
    pages: Iterator[list[ResultRow]]


@dataclass(frozen=True, slots=True)
class Progress:
    percent: float | None
    records_per_second: float | None  # over the outcomes so far
    eta_seconds: float | None  # at that rate, while the action runs


@dataclass(frozen=True, slots=True)
class RecordHistory:
    action_id: UUID
    row: int
    events: list[Any]  # the stored events: the chunk's input (ChunkQueued), then the record's outcome
    column_mapping: dict[str, str | None] | None = None  # how the input's columns became fields (Created)


def is_final(status: str) -> bool:
    return status in FINAL_STATUSES


class ActionQueries:
    def __init__(self, read_models: ReadModelStore, events: BulkActionLog) -> None:
        self.read_models = read_models
        self.events = events

    # ------------------------------------------------------------------ one action

    def owned_action(self, account_id: str | None, action_id: UUID) -> BulkAction:
        """The action's header (a handful of events); ``ActionNotFoundError`` if there is
        none, or it belongs to another account than ``account_id`` (None: any account)."""
        action = self.events.get_action(action_id)
        if account_id is not None and action.account_id != account_id:
            raise ActionNotFoundError(action_id)
        return action

    def owned_view(self, account_id: str | None, action_id: UUID) -> ActionView:
        """The read model of the account's action. Just after submission the projector
        may not have seen ``Created`` yet: then the header answers (read-your-writes)."""
        view = self.read_models.get_action(str(action_id))
        if view is None:
            return view_of(self.owned_action(account_id, action_id))
        if account_id is not None and view.account_id != account_id:
            raise ActionNotFoundError(action_id)
        return view

    def current_view(self, action_id: UUID) -> ActionView | None:
        """The read model of the action as the projector has it now, if it has seen it."""
        return self.read_models.get_action(str(action_id))

    def projected_view(self, account_id: str | None, action_id: UUID) -> ActionView:
        """The read model of the action, with no fallback: ``ActionNotFoundError`` until
        the projector has seen it."""
        view = self.read_models.get_action(str(action_id))
        if view is None or (account_id is not None and view.account_id != account_id):
            raise ActionNotFoundError(action_id)
        return view

    def retries(self, view: ActionView, limit: int = 100) -> list[ActionView]:
        """The chain of retries from ``view``: its retry, that one's retry, and so on
        (each action is retried once, so the chain is one line; at most ``limit``)."""
        chain: list[ActionView] = []
        while view.retried_by is not None and len(chain) < limit:
            view = self.read_models.get_action(view.retried_by) or view_of(
                self.events.get_action(UUID(view.retried_by))
            )
            chain.append(view)
        return chain

    # ------------------------------------------------------------------ lists

    def actions(self, filt: ActionFilter = _EVERY_ACTION) -> Iterator[ActionView]:
        """Every action the filter takes, newest first, a page at a time."""
        before = None
        while page := self.read_models.list_actions(filt, before=before, limit=_ACTIONS_PAGE):
            yield from page
            before = (page[-1].created_at, page[-1].action_id)

    def action_page(self, filt: ActionFilter, cursor: str | None, limit: int) -> Page[ActionView]:
        """One page of the filter's actions, newest first, after ``cursor`` (the
        previous page's ``next_cursor``). Times in the filter may be any ISO 8601
        date-time (a naive one is UTC)."""
        filt = ActionFilter(
            filt.account_id, filt.status, filt.entity_type, utc_instant(filt.created_from), utc_instant(filt.created_to)
        )
        before = _decoded_cursor(cursor) if cursor else None
        views = self.read_models.list_actions(filt, before=before, limit=limit + 1)
        more = len(views) > limit
        views = views[:limit]
        next_cursor = _cursor(views[-1].created_at, views[-1].action_id) if more and views else None
        return Page(views, next_cursor)

    # ------------------------------------------------------------------ results

    def log_page(self, view: ActionView, outcome: str | None, after_row: int, limit: int) -> Page[LogLine]:
        lines = self.read_models.logs(view.action_id, outcome=outcome, after_row=after_row, limit=limit + 1)
        more = len(lines) > limit
        lines = lines[:limit]
        return Page(lines, str(lines[-1].row) if more and lines else None)

    def log_lines(self, action_id: UUID, outcome: str | None = None) -> Iterator[list[LogLine]]:
        """Every log line of the action (of one outcome), in row order, a page at a time."""
        key = str(action_id)
        after = 0
        while page := self.read_models.logs(key, outcome=outcome, after_row=after, limit=_LOG_PAGE):
            yield page
            after = page[-1].row

    def result_rows(self, view: ActionView, outcome: str, page: int = 2000) -> ResultRows:
        """The records of one outcome, each with the input it came with."""
        fields = sorted(allowed_fields(view.entity_type, view.action_type, view.match_by))
        return ResultRows(fields, self._result_pages(view.action_id, outcome, fields, page))

    def _result_pages(self, action_id: str, outcome: str, fields: list[str], size: int) -> Iterator[list[ResultRow]]:
        """Each log line with its input record. The input is kept once, in the event store
        (its chunk's ``ChunkQueued``), read a chunk at a time: a copy in the read models
        doubled what an import stores."""
        chunk: Any = None
        after = 0
        while lines := self.read_models.logs(action_id, outcome=outcome, after_row=after, limit=size):
            rows = []
            for line in lines:
                if chunk is None or chunk.chunk_no != line.chunk_no:
                    chunk = self.events.chunk_queued(UUID(action_id), line.chunk_no)
                rows.append(_result_row(line, chunk, fields))
            yield rows
            after = lines[-1].row

    # ------------------------------------------------------------------ the audit trail

    def record_history(self, account_id: str | None, action_id: UUID, row: int) -> RecordHistory:
        """Every stored event about one input record: its chunk's input and its outcome."""
        action = self.owned_action(account_id, action_id)
        if action.total is not None and row > action.total:
            raise RowBeyondTotalError(action.id, row, action.total)
        chunk_no, index = divmod(row - 1, action.chunk_size)
        stored = self.events.record_events(action.id, chunk_no, index)
        if not stored:
            raise RowNotStoredError(action.id, row, action.total)
        return RecordHistory(action.id, row, stored, action.column_mapping)

    def action_history(self, action: BulkAction) -> Iterator[list[Any]]:
        """Every event of the action: its header stream, then each chunk's stream in
        chunk order (streams are read one at a time: memory stays flat)."""
        yield self.events.action_events(action.id)
        chunk_no = 0
        while action.chunk_count is None or chunk_no < action.chunk_count:
            stream = self.events.chunk_events(action.id, chunk_no)
            if not stream:
                break
            yield stream
            chunk_no += 1


def progress_of(view: ActionView) -> Progress:
    """How far the action is, how fast it goes, and when it will end at that rate."""
    rate = None
    if view.first_outcome_at and view.last_outcome_at and view.processed:
        span = datetime.fromisoformat(view.last_outcome_at) - datetime.fromisoformat(view.first_outcome_at)
        seconds = span.total_seconds()
        rate = round(view.processed / seconds, 1) if seconds > 0 else None
    total = view.total if view.total is not None else view.expected_total
    remaining = None if total is None else max(total - view.processed, 0)
    eta = None
    if rate and remaining is not None and not is_final(view.status):
        eta = round(remaining / rate, 1)
    percent = round(100.0 * view.processed / total, 1) if total else None
    return Progress(percent, rate, eta)


def elapsed_seconds(view: ActionView) -> float | None:
    """From the first outcome to the last so far."""
    if not (view.first_outcome_at and view.last_outcome_at):
        return None
    span = datetime.fromisoformat(view.last_outcome_at) - datetime.fromisoformat(view.first_outcome_at)
    return round(span.total_seconds(), 3)


def view_of(action: BulkAction) -> ActionView:
    """What the read model will say of an action the projector has not seen yet."""
    return ActionView(
        action_id=str(action.id),
        account_id=action.account_id,
        entity_type=action.entity_type,
        action_type=action.action_type,
        match_by=action.match_by,
        source_name=action.source.get("name"),
        chunk_size=action.chunk_size,
        expected_total=action.expected_total,
        created_at=action.created_on.isoformat(),
        status=action.status.value,
        total=action.total,
        chunk_count=action.chunk_count,
        actor=action.actor,
        reverts=str(action.reverts) if action.reverts else None,
        reverted_by=str(action.reverted_by) if action.reverted_by else None,
        retry_of=str(action.retry_of) if action.retry_of else None,
        retried_by=str(action.retried_by) if action.retried_by else None,
        dry_run=action.dry_run,
    )


def utc_instant(value: str | None) -> str | None:
    """As the read models store times: ISO 8601 in UTC (a naive time is taken as UTC)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInstantError(f"{value!r} is not an ISO 8601 date-time") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def _cursor(created_at: str, action_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([created_at, action_id])).decode().rstrip("=")


def _decoded_cursor(cursor: str) -> tuple[str, str]:
    try:
        created_at, action_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return str(created_at), str(action_id)
    except (ValueError, TypeError):
        raise InvalidCursorError("the cursor is not one this API gave out") from None


def _result_row(line: LogLine, chunk: Any, fields: list[str]) -> ResultRow:
    """``chunk``: the ``ChunkQueued`` event of the line's chunk (None if not stored)."""
    stored: dict[str, Any] = {}
    if chunk is not None and 0 <= line.row - chunk.first_row < len(chunk.records):
        stored = chunk.records[line.row - chunk.first_row]
    data = dict(stored.get("data") or {})
    if "error" in stored:
        data["_unparsed"] = stored["error"]
    values = [data.pop(name, "") for name in fields]
    return ResultRow(line, values, data)
