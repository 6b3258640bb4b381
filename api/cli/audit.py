"""``audit`` and ``revert``: what changed, when and by whom, and undoing an action."""

from __future__ import annotations

import time
from typing import Any

import click

from api import presenters
from api.cli.common import CliError, action_uuid, container, emit_json, services
from api.cli.imports import finish
from api.jobs import run_to_completion
from api.progress import ProgressDisplay
from application.actors import cli_actor
from application.audit import EntityAudit, EntityNotFoundError
from domain.entities.registry import ENTITY_TYPES


@click.command()
@click.argument("entity", type=click.Choice(sorted(ENTITY_TYPES)))
@click.argument("key", required=False)
@click.option("--id", "entity_id", default=None, help="The entity's id instead of its unique value.")
@click.option("--account", default="default", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def audit(ctx: click.Context, entity: str, key: str | None, entity_id: str | None, account: str, as_json: bool) -> None:
    """Every change of one entity (KEY: its email, domain or sku), oldest first."""
    if (key is None) == (entity_id is None):
        raise CliError("name the entity by its unique value (KEY) or by --id, not both")
    audits = services(ctx).audits
    try:
        found = audits.of_id(account, entity, entity_id) if entity_id else audits.of_key(account, entity, str(key))
    except EntityNotFoundError as exc:
        raise CliError(f"{exc} in account {account!r}") from None
    if as_json:
        emit_json(found.as_json())
        return
    _print_audit(found)


def _print_audit(found: EntityAudit) -> None:
    state = "gone" if found.current is None else "now " + ", ".join(f"{k}={v}" for k, v in found.current.items())
    click.echo(f"{found.entity} {found.key} (id {found.entity_id}): {state}")
    for change in found.changes:
        who = presenters.actor_text(change.actor)
        click.echo(f"  {change.at}  {change.op:<9} action {change.action_id} row {change.row}  by {who}")
        if change.column_mapping:
            click.echo(f"      read from columns: {presenters.mapping_text(change.column_mapping)}")
        for name, values in (change.fields or {}).items():
            click.echo(f"      {name}: {_shown(values['before'])} -> {_shown(values['after'])}")
        if change.fields is None:
            click.echo("      (recorded before field changes were kept)")
        for field, link in (change.links or {}).items():
            click.echo(f"      {presenters.link_text(field, link)}")


def _shown(value: Any) -> str:
    return "(none)" if value is None else repr(value)


@click.command()
@click.argument("action_id")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def revert(ctx: click.Context, action_id: str, workers: int, as_json: bool) -> None:
    """Undo a finished action: a new action of type revert, one outcome per record.

    A field changed since by anything else is left alone (the record is skipped,
    changed_since, naming who changed it); an inserted entity is removed only if it
    still holds exactly what the insert set."""
    started = time.monotonic()
    built = container(ctx)
    original = action_uuid(action_id)
    account = built.services.queries.projected_view(None, original).account_id
    revert_id = built.services.reversion.start(None, original, built.limits, cli_actor(account))
    if as_json:
        emit_json({"action_id": str(revert_id), "reverts": str(original), "created": True})
    else:
        click.echo(f"action {revert_id} reverts {original} (if interrupted: bulkactions resume {revert_id})")
    with ProgressDisplay(enabled=not as_json) as display:
        view = run_to_completion(built, revert_id, None, workers=workers, on_progress=display.update)
    finish(view, started, as_json)
