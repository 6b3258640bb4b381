"""The ``bulkactions`` command line: translates arguments into use cases, nothing more.

One module per group of commands: ``imports`` (import, resume, cancel, demo),
``queries`` (status, logs, history), ``audit`` (audit, revert), ``maintenance``
(replay, verify, migrate),
``serve`` (serve, accounts), and ``api.cli_processes`` (worker, relay, projector).
A new command is a function in one of them (or a new module) and one line below.

Every refusal is one readable line on stderr and a non-zero exit: 2 for bad input or
arguments, 3 for a quota that is spent, 1 for ``verify`` finding a difference or an
internal failure.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import NoReturn

import click
from pydantic import ValidationError

from api.cli import audit, imports, maintenance, queries, serve
from api.cli.common import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_QUOTA, CliError
from api.cli_processes import projector, relay, webhooks, worker
from api.jobs import RuntimeFailedError
from application.event_store import ActionNotFoundError
from application.ports.inputs import InputError
from application.ports.quotas import QuotaExceededError
from application.recovery import InputGoneError
from application.submission import InputChangedError, InvalidCommandError
from application.webhooks import CallbackUrlError
from domain.errors import DomainError
from infrastructure.logs import configure_logging, name_process
from infrastructure.settings import ConfigurationError, LogSettings, settings_problem

__all__ = ["cli", "main"]


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
    name_process(ctx.invoked_subcommand or "bulkactions")


for command in (
    imports.import_,
    imports.resume,
    imports.cancel,
    imports.demo,
    queries.status,
    queries.logs,
    queries.results,
    queries.history,
    audit.audit,
    audit.revert,
    imports.retry,
    maintenance.replay,
    maintenance.verify,
    maintenance.migrate,
    worker,
    relay,
    projector,
    webhooks,
    serve.serve,
    serve.accounts,
):
    cli.add_command(command)


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
    except (
        InputError,
        DomainError,
        InputChangedError,
        InputGoneError,
        InvalidCommandError,
        CallbackUrlError,
        ConfigurationError,
    ) as exc:
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
    configure_logging(LogSettings())


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
