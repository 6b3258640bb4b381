"""``import``, ``resume``, ``cancel`` and ``demo``: actions made, finished, stopped.

An import is checked whole (the command, then the file read once) before any store
is opened: bad input creates nothing, not even a data dir. A stream (standard input,
a pipe) is copied once into the data dir's ``spool/`` first, so that ``resume`` can
read it again; the copy is removed when its action ends.
"""

from __future__ import annotations

import time
from pathlib import Path
from uuid import UUID

import click
from click.core import ParameterSource

from api import presenters
from api.cli.common import action_uuid, container, data_dir, emit_json, services
from api.cli.read_options import options_of, read_options
from api.jobs import first_webhook_attempt, run_to_completion
from api.progress import ProgressDisplay
from application.actors import cli_actor
from application.ports.read_models import ActionView
from application.submission import (
    DEFAULT_CHUNK_SIZE,
    MAX_CHUNK_SIZE,
    CheckedInput,
    SubmitCommand,
    checked_input,
    open_input,
)
from domain.bulk_action import SUBMITTED_ACTIONS
from domain.entities.registry import ENTITY_TYPES
from infrastructure.bootstrap import Container, input_files
from infrastructure.files.readers import FORMATS
from infrastructure.files.sample import write_contacts_csv
from infrastructure.files.streams import is_stream, keep_spooled, sniffed_format, spool_stream, stream_name

_CHUNK_SIZES = click.IntRange(1, MAX_CHUNK_SIZE)


@click.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.option("--entity", required=True, type=click.Choice(sorted(ENTITY_TYPES)), help="Entity type.")
@click.option("--action", "action_type", required=True, type=click.Choice([a.value for a in SUBMITTED_ACTIONS]))
@click.option("--match-by", default=None, help="UPDATE: 'id' or the unique field (default).")
@click.option("--account", default="default", show_default=True)
@click.option(
    "--chunk-size", type=_CHUNK_SIZES, default=DEFAULT_CHUNK_SIZE, show_default=True, help="Records per chunk."
)
# The name of --chunk-size before 1.1, kept for scripts that use it.
@click.option("--batch-size", type=_CHUNK_SIZES, default=None, hidden=True)
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None, help="Default: from the file extension.")
@click.option("--idempotency-key", default=None, help="Submitting again with the same key resumes the same action.")
@click.option(
    "--callback-url",
    default=None,
    metavar="URL",
    help="POST the final status and counts here when the action completes or is cancelled (signed; see docs/api.md).",
)
@click.option("--dry-run", is_flag=True, help="Validate and decide every record, change nothing.")
@click.option(
    "--link-companies",
    is_flag=True,
    help="Contacts: create the company of each company_domain that has none (contacts are linked to"
    " existing companies of the account either way).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output: JSON lines.")
@read_options
@click.pass_context
def import_(
    ctx: click.Context,
    file: Path,
    entity: str,
    action_type: str,
    match_by: str | None,
    account: str,
    chunk_size: int,
    batch_size: int | None,
    workers: int,
    fmt: str | None,
    idempotency_key: str | None,
    callback_url: str | None,
    dry_run: bool,
    link_companies: bool,
    as_json: bool,
    maps: tuple[str, ...],
    map_file: Path | None,
    ignore_columns: tuple[str, ...],
    ignore_unknown_columns: bool,
    delimiter: str | None,
    encoding: str | None,
    sheet: str | None,
) -> None:
    """Import FILE (CSV with header, JSON lines, a JSON array or an Excel .xlsx; - for
    standard input) and wait for the result. With --dry-run every record is validated
    and decided (its outcome and counts as they would be) and no entity is written."""
    started = time.monotonic()
    size = _chunk_size(ctx, chunk_size, batch_size)
    actor = cli_actor(account)
    read = options_of(maps, map_file, ignore_columns, ignore_unknown_columns, delimiter, encoding, sheet)
    command = SubmitCommand(
        account,
        entity,
        action_type,
        match_by,
        size,
        idempotency_key,
        actor,
        callback_url,
        dry_run=dry_run,
        read=read,
        link_companies=link_companies,
    )
    if is_stream(str(file)):
        _import_stream(ctx, command, str(file), fmt, workers, started, as_json)
        return
    checked = checked_input(input_files(), command, str(file), fmt)
    _import_checked(container(ctx, create=True), checked, workers, started, as_json)


def _chunk_size(ctx: click.Context, chunk_size: int, batch_size: int | None) -> int:
    if batch_size is None:
        return chunk_size
    if ctx.get_parameter_source("chunk_size") is not ParameterSource.DEFAULT and chunk_size != batch_size:
        raise click.UsageError("--batch-size is the old name of --chunk-size: give one of them")
    return batch_size


def _import_stream(
    ctx: click.Context, command: SubmitCommand, path: str, fmt: str | None, workers: int, started: float, as_json: bool
) -> None:
    spooled = spool_stream(path)
    try:
        fmt = fmt or sniffed_format(spooled)
        checked = checked_input(input_files(), command, str(spooled), fmt)
        built = container(ctx, create=True)
        kept = keep_spooled(spooled, built.settings.data_dir / "spool", fmt)
    finally:
        spooled.unlink(missing_ok=True)
    source = open_input(input_files(), checked.command, str(kept), fmt, name=stream_name(path))
    view = _import_checked(built, CheckedInput(checked.command, source, checked.scan), workers, started, as_json)
    _remove_spooled_copy(built, UUID(view.action_id))


def _remove_spooled_copy(built: Container, action_id: UUID) -> None:
    finished = built.services.recovery.spooled_copy_to_remove(action_id, built.settings.data_dir / "spool")
    if finished is not None:
        finished.unlink(missing_ok=True)


def _import_checked(built: Container, checked: CheckedInput, workers: int, started: float, as_json: bool) -> ActionView:
    action_id, created = built.services.submission.create(checked.command, checked.source, checked.scan)
    if as_json:
        emit_json({"action_id": str(action_id), "created": created})
    else:
        click.echo(
            f"action {action_id} {'created' if created else 'already exists; resuming it'}"
            f" (if interrupted: bulkactions resume {action_id})"
        )
    with ProgressDisplay(enabled=not as_json) as display:
        view = run_to_completion(
            built, action_id, checked.source, workers=workers, on_progress=display.update, resuming=not created
        )
    finish(view, started, as_json)
    return view


@click.command()
@click.argument("action_id")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def resume(ctx: click.Context, action_id: str, workers: int, as_json: bool) -> None:
    """Finish an interrupted action: store the rest of its input, process what is left."""
    started = time.monotonic()
    built = container(ctx)
    recovery = built.services.recovery
    key = action_uuid(action_id)
    pending = recovery.pending_input(key)
    # A revert's input (path None) is read again where it is stored: nothing to hand over.
    source = None if pending is None or pending.path is None else built.services.submission.pending_source(pending)
    if as_json:
        emit_json({"action_id": str(key), "resumed": True})
    else:
        click.echo(f"action {key}: resuming")
    with ProgressDisplay(enabled=not as_json) as display:
        view = run_to_completion(built, key, source, workers=workers, on_progress=display.update, resuming=True)
    finish(view, started, as_json)
    _remove_spooled_copy(built, key)


@click.command()
@click.argument("action_id")
@click.argument("fixed_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None, help="Default: from the file extension.")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output: JSON lines.")
@click.pass_context
def retry(ctx: click.Context, action_id: str, fixed_file: Path, fmt: str | None, workers: int, as_json: bool) -> None:
    """Submit the corrected failed rows of a finished action again: FIXED_FILE is its
    failed.csv (bulkactions results ACTION_ID failed) with the rows fixed. A new action
    of the same entity and action, linked both ways; rows that did not fail are refused."""
    started = time.monotonic()
    built = container(ctx)
    parent = action_uuid(action_id)
    app = built.services
    account = app.queries.owned_action(None, parent).account_id
    retry_id, source = app.retrying.start(None, parent, str(fixed_file), fmt, built.limits, cli_actor(account))
    if as_json:
        emit_json({"action_id": str(retry_id), "retry_of": str(parent), "created": True})
    else:
        click.echo(f"action {retry_id} retries the failed rows of {parent}")
        click.echo(f"(if interrupted: bulkactions resume {retry_id})")
    with ProgressDisplay(enabled=not as_json) as display:
        view = run_to_completion(built, retry_id, source, workers=workers, on_progress=display.update)
    finish(view, started, as_json)


@click.command()
@click.argument("action_id")
@click.pass_context
def cancel(ctx: click.Context, action_id: str) -> None:
    """Cancel an action: chunks not yet processed are left unprocessed."""
    app = services(ctx)
    app.cancellation.cancel(None, action_uuid(action_id))
    app.catch_up()
    click.echo(f"action {action_id} cancelled")
    first_webhook_attempt(app)


@click.command()
@click.option("--rows", type=click.IntRange(1, 10_000_000), default=100_000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def demo(ctx: click.Context, rows: int, workers: int, as_json: bool) -> None:
    """Generate a sample contacts CSV (3% invalid, 3% duplicates) and import it."""
    path = data_dir(ctx) / f"demo-contacts-{rows}.csv"
    counts = write_contacts_csv(path, rows)
    if not as_json:
        click.echo(
            f"wrote {path}: {counts.total} rows, expect {counts.valid} succeeded, "
            f"{counts.invalid} failed, {counts.duplicates} skipped"
        )
    ctx.invoke(
        import_,
        file=path,
        entity="contact",
        action_type="insert",
        match_by=None,
        account="demo",
        chunk_size=DEFAULT_CHUNK_SIZE,
        batch_size=None,
        workers=workers,
        fmt="csv",
        idempotency_key=None,
        callback_url=None,
        dry_run=False,
        link_companies=False,
        as_json=as_json,
        maps=(),
        map_file=None,
        ignore_columns=(),
        ignore_unknown_columns=False,
        delimiter=None,
        encoding=None,
        sheet=None,
    )


def finish(view: ActionView, started: float, as_json: bool) -> None:
    seconds = round(time.monotonic() - started, 2)
    summary = presenters.action_summary(view) | {"seconds": seconds}
    summary["records_per_second"] = round(view.processed / seconds, 1) if seconds > 0 else None
    if as_json:
        emit_json(summary)
        return
    if view.dry_run:
        click.echo("DRY RUN: the outcomes below are what would happen; nothing was changed")
    click.echo(
        f"{view.status}: {summary['total']} records, {view.succeeded} succeeded, {view.failed} failed, "
        f"{view.skipped} skipped in {seconds}s ({summary['records_per_second']} records/s)"
    )
    if view.failed or view.skipped:
        outcome = "failed" if view.failed else "skipped"
        click.echo(f"See why: bulkactions logs {view.action_id} --outcome {outcome} --format csv")
    if view.discrepancy:
        click.echo(f"DISCREPANCY: {view.discrepancy}")
