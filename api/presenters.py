"""Turns read models and events into what users see (shared by the CLI and the HTTP API)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import orjson

from application.ports.read_models import ActionView, LogLine
from application.queries import ResultRow, ResultRows, progress_of
from application.retry_input import OTHER_INPUT_COLUMN, RESULT_LINK_COLUMNS

_DANGEROUS_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """Neutralise spreadsheet formulas (CSV injection): such cells get a leading quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_DANGEROUS_PREFIXES) else text


def action_summary(view: ActionView, retries: list[ActionView] | None = None) -> dict[str, Any]:
    """``retries``: the chain of retries from this action (``ActionQueries.retries``);
    without it a retry is named by its id alone."""
    return {
        "action_id": view.action_id,
        "account_id": view.account_id,
        "entity": view.entity_type,
        "action": view.action_type,
        "status": view.status,
        "source": view.source_name,
        "total": view.total if view.total is not None else view.expected_total,
        "processed": view.processed,
        "succeeded": view.succeeded,
        "failed": view.failed,
        "skipped": view.skipped,
        "created_at": view.created_at,
        "finished_at": view.finished_at,
        "discrepancy": view.discrepancy,
        "actor": view.actor,
        "reverts": view.reverts,
        "reverted_by": view.reverted_by,
        "retry_of": view.retry_of,
        "retried_by": retry_link(retries) if retries else _retry_id(view),
        "dry_run": view.dry_run,
        **asdict(progress_of(view)),
    }


def _retry_id(view: ActionView) -> dict[str, Any] | None:
    return None if view.retried_by is None else {"action_id": view.retried_by}


def retry_link(chain: list[ActionView]) -> dict[str, Any] | None:
    """The first retry of a chain with its counts, holding the next one, and so on."""
    if not chain:
        return None
    first = chain[0]
    return {
        "action_id": first.action_id,
        "status": first.status,
        "total": first.total if first.total is not None else first.expected_total,
        "succeeded": first.succeeded,
        "failed": first.failed,
        "skipped": first.skipped,
        "retried_by": retry_link(chain[1:]) or _retry_id(first),
    }


def actor_text(actor: dict[str, Any] | None) -> str:
    """Who, in a few words: the CLI user or the API key's id (nothing for actions of v1)."""
    if not actor:
        return "-"
    if actor.get("kind") == "cli":
        return f"cli:{actor.get('user')}"
    return f"{actor.get('key_id')}"


def record_account(
    action_id: Any, row: int, records: list[dict[str, Any]], column_mapping: dict[str, str | None] | None = None
) -> list[str]:
    """One input record's events as a person reads them: what came in (and from which
    column, where the input's columns were mapped), what became of it."""
    lines = [f"row {row} of action {action_id}"]
    for record in records:
        if record["type"] == "ChunkQueued":
            lines += _input_lines(record.get("records") or [], column_mapping)
        else:
            lines += _outcome_lines(record)
    return lines


def mapping_text(column_mapping: dict[str, str | None]) -> str:
    """``'E-mail Address' -> email, 'Notes' dropped``: how columns became fields."""
    return ", ".join(
        f"{column!r} dropped" if field is None else f"{column!r} -> {field}" for column, field in column_mapping.items()
    )


def _input_lines(stored: list[dict[str, Any]], column_mapping: dict[str, str | None] | None) -> list[str]:
    if not stored:
        return ["  input:   (not found in its chunk)"]
    one = stored[0]
    where = f" (line {one['line']})" if one.get("line") is not None else ""
    if "error" in one:
        return [f"  input{where}: unreadable: {one['error']}"]
    data = one.get("data") or {}
    columns = {field: column for column, field in (column_mapping or {}).items() if field is not None}
    lines = [f"  input{where}:"]
    for name, value in data.items():
        origin = f"  (column {columns[name]!r})" if columns.get(name, name) != name else ""
        lines.append(f"      {name} = {value!r}{origin}")
    dropped = [column for column, field in (column_mapping or {}).items() if field is None]
    if dropped:
        lines.append(f"      dropped column(s): {', '.join(map(repr, dropped))}")
    return lines


def _outcome_lines(record: dict[str, Any]) -> list[str]:
    kind = record["type"].removeprefix("Record").lower()
    lines = [f"  {kind} at {record['timestamp']}" + (f" ({record['op']})" if record.get("op") else "")]
    if record.get("entity_id"):
        version = f", version {record['entity_version']}" if record.get("entity_version") else ""
        lines.append(f"      entity {record['entity_id']}{version}")
    for name, (before, after) in (record.get("changes") or {}).items():
        lines.append(f"      {name}: {_value(before)} -> {_value(after)}")
    for field, link in (record.get("links") or {}).items():
        lines.append(f"      {link_text(field, link)}")
    for error in record.get("errors") or []:
        lines.append(f"      {error['field']}: {error['message']} ({error['code']})")
    if record.get("reason"):
        lines.append(f"      {record['reason']}")
    return lines


def link_text(field: str, link: dict[str, Any]) -> str:
    """``company_domain -> company 0190... (created)``: what a link field named."""
    if link["status"] == "invalid":
        return f"{field}: not linked, not a valid {link['entity']} key"
    if link["entity_id"] is None:
        return f"{field}: not linked, no {link['entity']} {link['key']!r} ({link['status']})"
    return f"{field} -> {link['entity']} {link['entity_id']} ({link['key']}, {link['status']})"


def _value(value: Any) -> str:
    return "(none)" if value is None else repr(value)


def log_line(line: LogLine) -> dict[str, Any]:
    out: dict[str, Any] = {"row": line.row, "line": line.line, "outcome": line.outcome}
    if line.outcome == "succeeded":
        out |= {"entity_id": line.entity_id, "op": line.op}
        if line.links:
            out["links"] = line.links
    elif line.outcome == "failed":
        out["errors"] = line.errors
    else:
        out |= {"reason": line.reason, "duplicate_of": line.entity_id, "duplicate_of_row": line.duplicate_of_row}
    return out


# A retry reads these columns back (application.retry_input) to link each row.
LOG_CSV_COLUMNS = list(RESULT_LINK_COLUMNS)


def log_csv_row(line: LogLine) -> list[str]:
    errors = "; ".join(f"{e['field']}: {e['message']}" for e in line.errors)
    values = [line.row, line.line, line.outcome, line.entity_id, line.op, errors, line.reason, line.duplicate_of_row]
    return [safe_cell(v) for v in values]


def result_csv_row(row: ResultRow) -> list[str]:
    """A results CSV line: the log columns, the input's fields, the rest of the input."""
    other = orjson.dumps(row.other).decode() if row.other else ""
    return [*log_csv_row(row.line), *(safe_cell(v) for v in row.values), safe_cell(other)]


def result_csv_lines(results: ResultRows) -> Iterator[str]:
    """A results CSV (``GET .../results/{outcome}.csv``, ``bulkactions results``), a page
    of rows at a time: the log columns, the entity's fields, ``other_input``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*LOG_CSV_COLUMNS, *results.fields, OTHER_INPUT_COLUMN])
    for page in results.pages:
        writer.writerows(result_csv_row(row) for row in page)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


def event_record(event: Any, row: int | None = None) -> dict[str, Any]:
    """One stored event as an auditor reads it: type, stream, version, time, payload."""
    payload = {k: v for k, v in vars(event).items() if k not in ("originator_id", "originator_version", "timestamp")}
    if "records" in payload and row is not None:
        payload["records"] = [r for r in payload["records"] if r.get("row") == row]
    return {
        "type": type(event).__qualname__.split(".")[-1],
        "stream": str(event.originator_id),
        "version": event.originator_version,
        "timestamp": event.timestamp.isoformat(),
        **{k: (str(v) if k == "action_id" else v) for k, v in payload.items()},
    }
