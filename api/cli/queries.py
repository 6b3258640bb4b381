"""``status``, ``logs`` and ``history``: what an action did, read from the stores."""

from __future__ import annotations

import csv
import sys

import click
import orjson

from api import presenters
from api.cli.common import CliError, action_uuid, emit_json, services
from application.event_store import ActionNotFoundError
from application.ports.read_models import ActionFilter
from application.queries import RowBeyondTotalError, RowNotStoredError


@click.command()
@click.argument("action_id", required=False)
@click.option("--account", default=None, help="Only this account's actions.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def status(ctx: click.Context, action_id: str | None, account: str | None, as_json: bool) -> None:
    """Status and counts of one action, or of every action (newest first)."""
    queries = services(ctx).queries
    if action_id is not None:
        try:
            views = [queries.projected_view(account or None, action_uuid(action_id))]
        except ActionNotFoundError:
            raise CliError(f"no action {action_id}") from None
    else:
        views = list(queries.actions(ActionFilter(account_id=account)))
    if action_id is not None:  # one action: with its chain of retries
        summaries = [presenters.action_summary(views[0], queries.retries(views[0]))]
    else:
        summaries = [presenters.action_summary(v) for v in views]
    if as_json:
        emit_json(summaries[0] if action_id else summaries)
        return
    for s in summaries:
        rate = f", {s['records_per_second']} rec/s" if s["records_per_second"] else ""
        eta = f", ETA {s['eta_seconds']}s" if s["eta_seconds"] is not None else ""
        click.echo(
            f"{s['action_id']}  {s['status']:<10} {s['entity']}/{s['action']}  {s['processed']}/{s['total']} "
            f"(ok {s['succeeded']}, failed {s['failed']}, skipped {s['skipped']}{rate}{eta})  {s['created_at']}"
            f"  by {presenters.actor_text(s['actor'])}{'  (dry run)' if s['dry_run'] else ''}"
        )


@click.command()
@click.argument("action_id")
@click.option("--outcome", type=click.Choice(["succeeded", "failed", "skipped"]), default=None)
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.pass_context
def logs(ctx: click.Context, action_id: str, outcome: str | None, fmt: str) -> None:
    """Per-record results of an action, in row order."""
    queries = services(ctx).queries
    key = action_uuid(action_id)
    try:
        queries.projected_view(None, key)
    except ActionNotFoundError:
        raise CliError(f"no action {action_id}") from None
    out = sys.stdout
    writer = csv.writer(out) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(presenters.LOG_CSV_COLUMNS)
    for page in queries.log_lines(key, outcome):
        for line in page:
            if writer is not None:
                writer.writerow(presenters.log_csv_row(line))
            else:
                out.write(orjson.dumps(presenters.log_line(line)).decode() + "\n")


@click.command()
@click.argument("action_id")
@click.argument("outcome", type=click.Choice(["succeeded", "failed", "skipped"]))
@click.pass_context
def results(ctx: click.Context, action_id: str, outcome: str) -> None:
    """The records of one outcome as CSV on standard output, each with its input: the
    same file as GET /v1/bulk-actions/{id}/results/{outcome}.csv. Fix failed.csv and
    give it to `bulkactions retry`."""
    queries = services(ctx).queries
    try:
        view = queries.projected_view(None, action_uuid(action_id))
    except ActionNotFoundError:
        raise CliError(f"no action {action_id}") from None
    for text in presenters.result_csv_lines(queries.result_rows(view, outcome)):
        sys.stdout.write(text)


@click.command()
@click.argument("action_id")
@click.option("--row", type=click.IntRange(min=1), required=True, help="1-based record number in the input.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def history(ctx: click.Context, action_id: str, row: int, as_json: bool) -> None:
    """Every stored event about one input record: the input it came with and its outcome."""
    try:
        found = services(ctx).queries.record_history(None, action_uuid(action_id), row)
    except RowBeyondTotalError as exc:
        raise CliError(f"action {action_id} has {exc.total} records; there is no row {row}") from None
    except RowNotStoredError:
        raise CliError(f"row {row} of action {action_id} has not been stored yet") from None
    records = [presenters.event_record(e, row) for e in found.events]
    if as_json:
        mapping = found.column_mapping
        emit_json({"action_id": str(found.action_id), "row": row, "column_mapping": mapping, "events": records})
        return
    for text in presenters.record_account(found.action_id, row, records, found.column_mapping):
        click.echo(text)
