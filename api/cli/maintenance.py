"""``replay``, ``verify`` and ``migrate``: the stores checked, rebuilt or brought up to date."""

from __future__ import annotations

import time

import click

from api.cli.common import EXIT_FAILURE, CliError, action_uuid, container, emit_json, services
from application.migration import UnknownOwnerError
from projections.report import VerificationReport
from projections.verification import UnknownActionError

VERIFY_LISTED = 20  # differences `verify` shows in full by default (--json: all)


@click.command()
@click.pass_context
def replay(ctx: click.Context) -> None:
    """Rebuild every read model from the event store (stop running imports first)."""
    started = time.monotonic()
    count = services(ctx).maintenance.replay()
    click.echo(f"replayed {count} events into fresh read models in {time.monotonic() - started:.2f}s")


@click.command()
@click.argument("action_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per difference, then a summary line.")
@click.option(
    "--limit",
    type=click.IntRange(0),
    default=None,
    help=f"List at most this many differences in full (default {VERIFY_LISTED}, with --json all); "
    "the totals count every one.",
)
@click.option("--entities", is_flag=True, help="Also check every entity in the entity store against the events.")
@click.pass_context
def verify(ctx: click.Context, action_id: str | None, as_json: bool, limit: int | None, entities: bool) -> None:
    """Rebuild the read models from the events aside and compare with the live ones
    (--entities: and the entity store with what the events say it holds)."""
    maintenance = services(ctx).maintenance
    key = str(action_uuid(action_id)) if action_id else None
    on_listed = (lambda d: emit_json(d.as_json())) if as_json else (lambda d: click.echo(d.describe()))
    report = VerificationReport(on_listed, limit if limit is not None or as_json else VERIFY_LISTED)
    if entities and key is not None:
        raise CliError("--entities checks the whole entity store: give no action id with it")
    try:
        maintenance.verify(report, key, entities=entities)
    except UnknownActionError as exc:
        raise CliError(str(exc)) from None
    if as_json:
        emit_json(report.summary())
    else:
        for line in report.text_summary():
            click.echo(line)
    if report.differences:
        raise CliError(f"verify: {report.differences} difference(s) between read models and events", EXIT_FAILURE)


@click.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Bring stores written by an earlier release up to date (run once, with nothing else running)."""
    app = container(ctx, migrating=True).services
    try:
        result = app.migration.run()
    except UnknownOwnerError as exc:
        raise CliError(f"nothing migrated: {exc}", EXIT_FAILURE) from None
    rebuilt = app.maintenance.rebuild_if_outdated()
    if result is None and rebuilt is None:
        click.echo("nothing to migrate: the stores are current")
        return
    if rebuilt is not None:
        click.echo(f"rebuilt the read models from {rebuilt} events: they now hold the audit trail")
    if result is None:
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
