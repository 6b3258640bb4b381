"""Retry the failed rows of a finished action: a corrected copy of its failed rows (the
export of ``results/failed.csv``) becomes a new action of the same entity, action type
and match field, linked both ways to the action it retries.

The file is checked whole before anything is created: every record must name a row
that failed in the retried action (read from that action's outcome events, the
record's own truth, and only from the chunks those rows are in), once. A chain of
retries (a retry of a retry) stays one line: an action is retried once.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from application.event_store import ActionChangedError, ActionNotFoundError, BulkActionLog
from application.ports.inputs import InputFiles, InputScan
from application.ports.quotas import Clock, QuotaGate, QuotaLimits
from application.retry_input import RetrySource
from application.submission import InvalidCommandError, SubmitCommand, open_input
from domain.bulk_action import BulkAction, BulkChunk

_NAMED_ROWS = 20  # rows named in a refusal


class RetryRowsError(InvalidCommandError):
    """A retry's file names rows that did not fail in the retried action, or a row twice."""


def _rows_text(rows: list[int]) -> str:
    shown = ", ".join(str(r) for r in rows[:_NAMED_ROWS])
    return shown + (f" and {len(rows) - _NAMED_ROWS} more" if len(rows) > _NAMED_ROWS else "")


class Retrying:
    def __init__(self, events: BulkActionLog, quota: QuotaGate, clock: Clock, files: InputFiles) -> None:
        self.events = events
        self.quota = quota
        self.clock = clock
        self.files = files

    def command_of(self, parent: BulkAction) -> SubmitCommand:
        """What a retry of ``parent`` submits: the same entity, action and match field,
        linking as it did."""
        return SubmitCommand(
            parent.account_id,
            parent.entity_type,
            parent.action_type,
            parent.match_by,
            parent.chunk_size,
            link_companies=parent.link_companies,
        )

    def start(
        self,
        account_id: str | None,
        parent_id: UUID,
        path: str,
        fmt: str | None,
        limits: QuotaLimits,
        actor: dict[str, Any] | None,
        name: str | None = None,
    ) -> tuple[UUID, RetrySource]:
        """The retry's id and its input. ``account_id`` (None: any, the CLI's operator)
        must own the retried action: another account's action is not found."""
        parent = self._owned(account_id, parent_id)
        retry_id = uuid4()
        parent.start_retry(retry_id)  # refused early: unfinished, a revert, retried already
        source = open_input(self.files, self.command_of(parent), path, fmt, name, retry=True)
        assert isinstance(source, RetrySource)
        scan = source.scan()
        self._check_rows(parent, source)
        while True:
            parent = self._owned(account_id, parent_id)
            parent.start_retry(retry_id)
            retry = self._retry_of(parent, retry_id, source, scan, actor)
            self.quota.reserve(parent.account_id, str(retry_id), scan.total, limits, self.clock.now())
            try:
                self.events.save_together(retry, parent)
                return retry_id, source
            except ActionChangedError:
                self.quota.release(parent.account_id, str(retry_id))  # changed meanwhile: decide again
            except BaseException:
                self.quota.release(parent.account_id, str(retry_id))
                raise

    def _owned(self, account_id: str | None, action_id: UUID) -> BulkAction:
        action = self.events.get_action(action_id)
        if account_id is not None and action.account_id != account_id:
            raise ActionNotFoundError(action_id)
        return action

    def _check_rows(self, parent: BulkAction, source: RetrySource) -> None:
        """Every record names a row that failed in ``parent``, and no row twice."""
        named: set[int] = set()
        repeated: list[int] = []
        for record in source.records():
            assert record.retry_of_row is not None
            if record.retry_of_row in named:
                repeated.append(record.retry_of_row)
            named.add(record.retry_of_row)
        if repeated:
            raise RetryRowsError(
                f"{source.name} names row(s) {_rows_text(sorted(set(repeated)))} of action {parent.id} more than once"
            )
        not_failed = sorted(named - self._failed_rows(parent, named))
        if not_failed:
            raise RetryRowsError(
                f"{source.name}: row(s) {_rows_text(not_failed)} of action {parent.id} did not fail there;"
                " only its failed rows can be retried"
            )

    def _failed_rows(self, parent: BulkAction, rows: set[int]) -> set[int]:
        """Which of ``rows`` failed in ``parent``, from the outcome events of their chunks."""
        failed: set[int] = set()
        for chunk_no in sorted({(row - 1) // parent.chunk_size for row in rows}):
            if parent.chunk_count is None or chunk_no >= parent.chunk_count:
                continue
            failed |= {
                e.row for e in self.events.chunk_events(parent.id, chunk_no) if isinstance(e, BulkChunk.RecordFailed)
            }
        return failed & rows

    def _retry_of(
        self,
        parent: BulkAction,
        retry_id: UUID,
        source: RetrySource,
        scan: InputScan,
        actor: dict[str, Any] | None,
    ) -> BulkAction:
        return BulkAction.submit(
            retry_id,
            parent.account_id,
            parent.entity_type,
            parent.action_type,
            parent.match_by,
            {**source.describe(), "sha256": scan.sha256, "size": scan.size},
            parent.chunk_size,
            scan.total,
            actor,
            retry_of=parent.id,
            link_companies=parent.link_companies,
        )
