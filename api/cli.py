"""The ``bulkactions`` command line: translates arguments into use cases, nothing more.

Every refusal is one readable line on stderr and a non-zero exit: 2 for bad input or
arguments, 3 for a quota that is spent, 1 for ``verify`` finding a difference or an
internal failure.
"""

from __future__ import annotations

import csv
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any, NoReturn
from uuid import UUID, uuid4

import click
import orjson
from pydantic import ValidationError

from api import presenters
from api.jobs import RuntimeFailedError, checked_file, create_action, file_source, run_to_completion
from api.presenters import FINAL_STATUSES
from api.progress import ProgressDisplay
from application.event_store import ActionNotFoundError
from application.migration import UnknownOwnerError, migrate_entity_owners
from application.ports.inputs import InputError, InputScan, InputSource
from application.ports.quotas import QuotaExceededError
from application.ports.read_models import ActionView
from application.submission import InputChangedError, InvalidCommandError, SubmitCommand
from domain.bulk_action import SUBMITTED_ACTIONS
from domain.entities.registry import ENTITY_TYPES
from domain.errors import DomainError
from infrastructure.bootstrap import (
    ConfigurationError,
    Container,
    bootstrap,
    discard_read_models,
    promote_read_models,
    read_model_store,
    read_models_aside,
)
from infrastructure.files.readers import FORMATS
from infrastructure.files.sample import write_contacts_csv
from infrastructure.files.streams import STDIN, is_stream, sniffed_format, spool_stream
from infrastructure.settings import LogSettings, Settings, settings_problem
from projections.rebuild import rebuild
from projections.report import VerificationReport
from projections.verification import UnknownActionError, verify_read_models

EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_QUOTA = 1, 2, 3
VERIFY_LISTED = 20  # differences `verify` shows in full by default (--json: all)


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


def _container(ctx: click.Context, *, create: bool = False) -> Container:
    """The stores; only commands that make actions (``create``) may make a data dir."""
    obj: dict[str, Any] = ctx.ensure_object(dict)
    if "container" not in obj:
        obj["container"] = bootstrap(Settings(data_dir=obj["data_dir"]), create=create)
        ctx.call_on_close(obj["container"].close)
    return obj["container"]  # type: ignore[no-any-return]


def _emit_json(value: Any) -> None:
    click.echo(orjson.dumps(value).decode())


def _action_uuid(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise CliError(f"{value!r} is not an action id") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="BULK_DATA_DIR",
    default=Path(".bulkactions"),
    show_default=True,
    help="Where embedded state lives.",
)
@click.pass_context
def cli(ctx: click.Context, data_dir: Path) -> None:
    """Bulk insert / update / upsert of CRM records with per-record results."""
    ctx.ensure_object(dict)["data_dir"] = data_dir


def _finish(container: Container, view: Any, started: float, as_json: bool) -> None:
    seconds = round(time.monotonic() - started, 2)
    summary = presenters.action_summary(view) | {"seconds": seconds}
    summary["records_per_second"] = round(view.processed / seconds, 1) if seconds > 0 else None
    if as_json:
        _emit_json(summary)
        return
    click.echo(
        f"{view.status}: {summary['total']} records, {view.succeeded} succeeded, {view.failed} failed, "
        f"{view.skipped} skipped in {seconds}s ({summary['records_per_second']} records/s)"
    )
    if view.failed or view.skipped:
        click.echo(f"See why: bulkactions logs {view.action_id} --outcome failed --format csv")
    if view.discrepancy:
        click.echo(f"DISCREPANCY: {view.discrepancy}")


@cli.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.option("--entity", required=True, type=click.Choice(sorted(ENTITY_TYPES)), help="Entity type.")
@click.option("--action", "action_type", required=True, type=click.Choice([a.value for a in SUBMITTED_ACTIONS]))
@click.option("--match-by", default=None, help="UPDATE: 'id' or the unique field (default).")
@click.option("--account", default="default", show_default=True)
@click.option(
    "--batch-size", type=click.IntRange(1, 10_000), default=1000, show_default=True, help="Records per chunk."
)
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None, help="Default: from the file extension.")
@click.option("--idempotency-key", default=None, help="Submitting again with the same key resumes the same action.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output: JSON lines.")
@click.pass_context
def import_(
    ctx: click.Context,
    file: Path,
    entity: str,
    action_type: str,
    match_by: str | None,
    account: str,
    batch_size: int,
    workers: int,
    fmt: str | None,
    idempotency_key: str | None,
    as_json: bool,
) -> None:
    """Import FILE (CSV with header, JSON lines, or a JSON array; - for standard input)
    and wait for the result."""
    started = time.monotonic()
    command = SubmitCommand(account, entity, action_type, match_by, batch_size, idempotency_key)
    if is_stream(str(file)):
        _import_stream(ctx, command, str(file), fmt, workers, started, as_json)
        return
    command, source, scan = checked_file(command, str(file), fmt)
    container = _container(ctx, create=True)
    _import_checked(container, command, source, scan, workers, started, as_json)


def _import_stream(
    ctx: click.Context, command: SubmitCommand, path: str, fmt: str | None, workers: int, started: float, as_json: bool
) -> None:
    """Standard input or a pipe: copied once to a spool file in the data dir (so that
    `resume` can read it again), removed once the action has finished."""
    spooled = spool_stream(path)
    try:
        fmt = fmt or sniffed_format(spooled)
        command, source, scan = checked_file(command, str(spooled), fmt)
        container = _container(ctx, create=True)
        kept = container.settings.data_dir / "spool" / f"{uuid4().hex}.{fmt}"
        kept.parent.mkdir(exist_ok=True)
        shutil.move(spooled, kept)
    finally:
        spooled.unlink(missing_ok=True)
    source = file_source(str(kept), fmt, command)
    source.name = "stdin" if path == STDIN else Path(path).name
    view = _import_checked(container, command, source, scan, workers, started, as_json)
    _remove_spooled_input(container, source.describe(), view)


def _remove_spooled_input(container: Container, source_info: dict[str, Any], view: ActionView) -> None:
    """A copy of a stream (in the data dir's spool) is needed until the action ends."""
    path = Path(source_info.get("path", ""))
    if view.status in FINAL_STATUSES and path.parent == (container.settings.data_dir / "spool").resolve():
        path.unlink(missing_ok=True)


def _import_checked(
    container: Container,
    command: SubmitCommand,
    source: InputSource,
    scan: InputScan,
    workers: int,
    started: float,
    as_json: bool,
) -> ActionView:
    action_id, created = create_action(container, command, source, scan)
    if as_json:
        _emit_json({"action_id": str(action_id), "created": created})
    else:
        click.echo(
            f"action {action_id} {'created' if created else 'already exists; resuming it'}"
            f" (if interrupted: bulkactions resume {action_id})"
        )
    with ProgressDisplay(enabled=not as_json) as display:
        view = run_to_completion(
            container, action_id, source, workers=workers, on_progress=display.update, resuming=not created
        )
    _finish(container, view, started, as_json)
    return view


@cli.command()
@click.argument("action_id")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def resume(ctx: click.Context, action_id: str, workers: int, as_json: bool) -> None:
    """Finish an interrupted action: queue the rest of its input, process what is left."""
    started = time.monotonic()
    container = _container(ctx)
    action = container.events.get_action(_action_uuid(action_id))
    source = None
    if action.total is None:
        info = action.source
        if info.get("kind") != "file":
            raise CliError(
                f"action {action_id} was interrupted while its input was being stored, and that input is gone"
            )
        command = SubmitCommand(
            action.account_id, action.entity_type, action.action_type, action.match_by, action.chunk_size
        )
        source = file_source(info["path"], info["format"], command)
    if as_json:
        _emit_json({"action_id": str(action.id), "resumed": True})
    else:
        click.echo(f"action {action.id}: resuming")
    with ProgressDisplay(enabled=not as_json) as display:
        view = run_to_completion(
            container, action.id, source, workers=workers, on_progress=display.update, resuming=True
        )
    _finish(container, view, started, as_json)
    _remove_spooled_input(container, action.source, view)


@cli.command()
@click.argument("action_id")
@click.pass_context
def cancel(ctx: click.Context, action_id: str) -> None:
    """Cancel an action: chunks not yet processed are left unprocessed."""
    container = _container(ctx)
    container.completer().cancel(_action_uuid(action_id))
    container.projector().catch_up()
    click.echo(f"action {action_id} cancelled")


@cli.command()
@click.argument("action_id", required=False)
@click.option("--account", default=None, help="Only this account's actions.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def status(ctx: click.Context, action_id: str | None, account: str | None, as_json: bool) -> None:
    """Status and counts of one action, or of every action (newest first)."""
    from projections.rebuild import all_actions

    store = _container(ctx).read_models
    if action_id is not None:
        view = store.get_action(str(_action_uuid(action_id)))
        if view is None or (account and view.account_id != account):
            raise CliError(f"no action {action_id}")
        views = [view]
    else:
        views = [v for v in all_actions(store) if account is None or v.account_id == account]
    summaries = [presenters.action_summary(v) for v in views]
    if as_json:
        _emit_json(summaries[0] if action_id else summaries)
        return
    for s in summaries:
        rate = f", {s['records_per_second']} rec/s" if s["records_per_second"] else ""
        eta = f", ETA {s['eta_seconds']}s" if s["eta_seconds"] is not None else ""
        click.echo(
            f"{s['action_id']}  {s['status']:<10} {s['entity']}/{s['action']}  {s['processed']}/{s['total']} "
            f"(ok {s['succeeded']}, failed {s['failed']}, skipped {s['skipped']}{rate}{eta})  {s['created_at']}"
        )


@cli.command()
@click.argument("action_id")
@click.option("--outcome", type=click.Choice(["succeeded", "failed", "skipped"]), default=None)
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.pass_context
def logs(ctx: click.Context, action_id: str, outcome: str | None, fmt: str) -> None:
    """Per-record results of an action, in row order."""
    store = _container(ctx).read_models
    key = str(_action_uuid(action_id))
    if store.get_action(key) is None:
        raise CliError(f"no action {action_id}")
    out = sys.stdout
    writer = csv.writer(out) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(presenters.LOG_CSV_COLUMNS)
    after = 0
    while page := store.logs(key, outcome=outcome, after_row=after, limit=5000):
        for line in page:
            if writer is not None:
                writer.writerow(presenters.log_csv_row(line))
            else:
                out.write(orjson.dumps(presenters.log_line(line)).decode() + "\n")
        after = page[-1].row


@cli.command()
@click.argument("action_id")
@click.option("--row", type=click.IntRange(min=1), required=True, help="1-based record number in the input.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def history(ctx: click.Context, action_id: str, row: int, as_json: bool) -> None:
    """Every stored event about one input record: the input it came with and its outcome."""
    events = _container(ctx).events
    action = events.get_action(_action_uuid(action_id))
    chunk_no, index = divmod(row - 1, action.chunk_size)
    if action.total is not None and row > action.total:
        raise CliError(f"action {action_id} has {action.total} records; there is no row {row}")
    stored = events.record_events(action.id, chunk_no, index)
    if not stored:
        raise CliError(f"row {row} of action {action_id} has not been stored yet")
    records = [presenters.event_record(e, row) for e in stored]
    if as_json:
        _emit_json({"action_id": str(action.id), "row": row, "events": records})
        return
    for r in records:
        details = {k: v for k, v in r.items() if k not in ("type", "stream", "version", "timestamp")}
        click.echo(f"{r['timestamp']}  {r['type']:<16} v{r['version']:<5} {orjson.dumps(details).decode()}")


@cli.command()
@click.pass_context
def replay(ctx: click.Context) -> None:
    """Rebuild every read model from the event store (stop running imports first)."""
    container = _container(ctx)
    settings = container.settings
    started = time.monotonic()
    discard_read_models(settings, "rebuild")
    scratch = read_model_store(settings, "rebuild")
    try:
        count = rebuild(container.events, scratch)
    finally:
        scratch.close()
    container.read_models.close()
    promote_read_models(settings, "rebuild")
    click.echo(f"replayed {count} events into fresh read models in {time.monotonic() - started:.2f}s")


@cli.command()
@click.argument("action_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per difference, then a summary line.")
@click.option(
    "--limit",
    type=click.IntRange(0),
    default=None,
    help=f"List at most this many differences in full (default {VERIFY_LISTED}, with --json all); "
    "the totals count every one.",
)
@click.pass_context
def verify(ctx: click.Context, action_id: str | None, as_json: bool, limit: int | None) -> None:
    """Rebuild the read models from the events aside and compare with the live ones."""
    container = _container(ctx)
    key = str(_action_uuid(action_id)) if action_id else None
    on_listed = (lambda d: _emit_json(d.as_json())) if as_json else (lambda d: click.echo(d.describe()))
    report = VerificationReport(on_listed, limit if limit is not None or as_json else VERIFY_LISTED)
    try:
        verify_read_models(
            container.events, container.read_models, read_models_aside(container.settings, "verify"), report, key
        )
    except UnknownActionError as exc:
        raise CliError(str(exc)) from None
    if as_json:
        _emit_json(report.summary())
    else:
        for line in report.text_summary():
            click.echo(line)
    if report.differences:
        raise CliError(f"verify: {report.differences} difference(s) between read models and events", EXIT_FAILURE)


@cli.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Bring stores written by an earlier release up to date (run once, with nothing else running)."""
    container = bootstrap(Settings(data_dir=ctx.ensure_object(dict)["data_dir"]), create=False, migrating=True)
    ctx.call_on_close(container.close)
    try:
        result = migrate_entity_owners(container.events, container.entities)
    except UnknownOwnerError as exc:
        raise CliError(f"nothing migrated: {exc}", EXIT_FAILURE) from None
    if result is None:
        click.echo("nothing to migrate: the stores are current")
        return
    click.echo(f"migrated {_entities(result.entities)}: each now belongs to the account whose action inserted it")
    if result.changed_by_other_accounts:
        shown = ", ".join(result.changed_by_other_accounts[:10])
        click.echo(
            f"review {_entities(len(result.changed_by_other_accounts))} last changed by another account's action"
            f" (possible before this release): {shown}"
        )


def _entities(count: int) -> str:
    return f"{count} entity" if count == 1 else f"{count} entities"


@cli.command()
@click.option("--rows", type=click.IntRange(1, 10_000_000), default=100_000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def demo(ctx: click.Context, rows: int, workers: int, as_json: bool) -> None:
    """Generate a sample contacts CSV (3% invalid, 3% duplicates) and import it."""
    data_dir: Path = ctx.obj["data_dir"]
    path = data_dir / f"demo-contacts-{rows}.csv"
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
        batch_size=1000,
        workers=workers,
        fmt="csv",
        idempotency_key=None,
        as_json=as_json,
    )


from api.cli_processes import projector as projector_command  # noqa: E402
from api.cli_processes import relay as relay_command  # noqa: E402
from api.cli_processes import worker as worker_command  # noqa: E402

cli.add_command(worker_command)
cli.add_command(relay_command)
cli.add_command(projector_command)

from api.cli_serve import accounts as accounts_command  # noqa: E402
from api.cli_serve import serve as serve_command  # noqa: E402

cli.add_command(serve_command)
cli.add_command(accounts_command)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"bulkactions: error: {message}", err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    try:
        _configure_logging()
        cli.main(args=argv, prog_name="bulkactions", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        _fail("aborted", EXIT_FAILURE)
    except click.ClickException as exc:
        _fail(exc.format_message().replace("\n", " "), EXIT_BAD_INPUT)
    except CliError as exc:
        _fail(str(exc), exc.code)
    except (InputError, DomainError, InputChangedError, InvalidCommandError, ConfigurationError) as exc:
        _fail(str(exc), EXIT_BAD_INPUT)
    except ActionNotFoundError as exc:
        _fail(str(exc), EXIT_BAD_INPUT)
    except QuotaExceededError as exc:
        retry = "" if exc.retry_after_seconds is None else f"; retry in {exc.retry_after_seconds}s"
        _fail(f"quota {exc.limit} exceeded: {exc.detail}{retry}", EXIT_QUOTA)
    except RuntimeFailedError as exc:
        _fail(str(exc), EXIT_FAILURE)
    except BrokenPipeError:
        sys.exit(EXIT_FAILURE)
    except ValidationError as exc:
        problem = settings_problem(exc)
        if problem is not None:
            _fail(f"invalid setting {problem}", EXIT_BAD_INPUT)
        _fail(f"internal error: {exc}", EXIT_FAILURE)
    except Exception as exc:
        missing = _missing_extra(exc)
        if missing is not None:
            _fail(f"{missing[0]} is not installed; this needs: pip install -e '.[{missing[1]}]'", EXIT_FAILURE)
        # An internal failure is one line too; the traceback is for whoever asks for it.
        logging.getLogger("bulkactions").debug("internal error", exc_info=True)
        _fail(f"internal error: {type(exc).__name__}: {exc} (BULK_LOG_LEVEL=DEBUG shows where)", EXIT_FAILURE)


def _configure_logging() -> None:
    logging.basicConfig(
        level=LogSettings().log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _missing_extra(exc: BaseException | None) -> tuple[str, str] | None:
    """The module of an optional extra whose absence caused ``exc`` (the event store
    library wraps it in its own errors), with the extra that installs it."""
    while exc is not None:
        if isinstance(exc, ModuleNotFoundError):
            name = exc.name or ""
            extra = _EXTRAS.get(name.split(".")[0])
            return (name, extra) if extra else None
        exc = exc.__cause__ or exc.__context__
    return None


# Optional dependencies by the extra that installs them: the base install (README's
# first command) runs the embedded CLI; `serve` needs [api], the production adapters
# [production].
_EXTRAS = {
    "fastapi": "api",
    "uvicorn": "api",
    "uvloop": "api",
    "httptools": "api",
    "python_multipart": "api",
    "prometheus_client": "api",
    "psycopg": "production",
    "psycopg_pool": "production",
    "pika": "production",
    "pymongo": "production",
}


if __name__ == "__main__":
    main()
