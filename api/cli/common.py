"""What every ``bulkactions`` command shares: exit codes, the one-line error, the
stores of the data dir (built once per run), JSON output, action ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import click
import orjson

from api.process_heap import settle_heap
from infrastructure.bootstrap import ApplicationServices, Container, bootstrap
from infrastructure.settings import Settings

EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_QUOTA = 1, 2, 3


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


def data_dir(ctx: click.Context) -> Path:
    found: Path = ctx.ensure_object(dict)["data_dir"]
    return found


def container(ctx: click.Context, *, create: bool = False, migrating: bool = False, metrics: bool = False) -> Container:
    """The adapters and services of the data dir, built once per run; only commands
    that make actions (``create``) may make a data dir; ``metrics`` records them
    (``serve``)."""
    obj: dict[str, Any] = ctx.ensure_object(dict)
    if "container" not in obj:
        settings = Settings(data_dir=obj["data_dir"])
        if metrics:
            settings = settings.model_copy(update={"metrics": True})
        obj["container"] = bootstrap(settings, create=create, migrating=migrating)
        settle_heap()
        ctx.call_on_close(obj["container"].close)
    built: Container = obj["container"]
    return built


def services(ctx: click.Context) -> ApplicationServices:
    return container(ctx).services


def emit_json(value: Any) -> None:
    click.echo(orjson.dumps(value).decode())


def action_uuid(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise CliError(f"{value!r} is not an action id") from None
