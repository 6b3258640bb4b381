"""How ``import`` reads its file: column mapping, dropped columns, encoding, delimiter,
sheet. Translated into ``ReadOptions``; every rule about them is the application's
(``application.columns``) or the reader's (``infrastructure.files``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from api.cli.common import CliError
from application.ports.inputs import ReadOptions

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS = (
    click.option(
        "--map",
        "maps",
        multiple=True,
        metavar="'COLUMN=FIELD'",
        help="Read the file's COLUMN as FIELD (repeatable; case and surrounding spaces do not matter).",
    ),
    click.option(
        "--map-file",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help='A JSON object of column names to fields: {"E-mail Address": "email"}.',
    ),
    click.option("--ignore-column", "ignore_columns", multiple=True, metavar="NAME", help="Drop this column."),
    click.option("--ignore-unknown-columns", is_flag=True, help="Drop every column that names no field."),
    click.option("--delimiter", default=None, help="CSV delimiter (default: detected among , ; tab |)."),
    click.option("--encoding", default=None, help="Text encoding, e.g. cp1252 or latin-1 (default: UTF-8/UTF-16)."),
    click.option("--sheet", default=None, help="xlsx: the sheet to read (default: the first)."),
)


def read_options(command: F) -> F:
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def options_of(
    maps: tuple[str, ...],
    map_file: Path | None,
    ignore_columns: tuple[str, ...],
    ignore_unknown_columns: bool,
    delimiter: str | None,
    encoding: str | None,
    sheet: str | None,
) -> ReadOptions:
    mapping = _mapping_file(map_file) + tuple(_pair(text) for text in maps)
    return ReadOptions(mapping, ignore_columns, ignore_unknown_columns, delimiter, encoding, sheet)


def _pair(text: str) -> tuple[str, str]:
    column, equals, field = text.rpartition("=")
    if not equals or not column.strip() or not field.strip():
        raise CliError(f"--map takes 'COLUMN=FIELD', not {text!r}")
    return column, field


def _mapping_file(path: Path | None) -> tuple[tuple[str, str], ...]:
    if path is None:
        return ()
    try:
        mapping = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise CliError(f"cannot read the mapping file {path}: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise CliError(f"the mapping file {path} is not JSON: {exc}") from None
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise CliError(f'the mapping file {path} must hold one JSON object of column names to fields: {{"A": "email"}}')
    return tuple(mapping.items())
