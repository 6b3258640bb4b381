"""Inputs that can be read only once (standard input, a pipe, process substitution):
copied to a file first, because an input is read twice (checked and counted, then
stored) and must stay re-readable for ``resume``."""

from __future__ import annotations

import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from uuid import uuid4

from application.ports.inputs import InputError

STDIN = "-"
_SNIFF_BYTES = 4096


def is_stream(path: str) -> bool:
    """Standard input, or a path that is not a regular file (a FIFO, /dev/fd/N)."""
    if path == STDIN:
        return True
    try:
        return not stat.S_ISREG(os.stat(path).st_mode) and not stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:
        return False  # missing: the reader reports it


def spool_stream(path: str) -> Path:
    """The whole stream copied to a temporary file (the caller moves or removes it)."""
    handle, spooled = tempfile.mkstemp(prefix="bulkactions-input-")
    try:
        with os.fdopen(handle, "wb") as out:
            if path == STDIN:
                shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
            else:
                with open(path, "rb") as stream:
                    shutil.copyfileobj(stream, out, 1 << 20)
    except OSError as exc:
        Path(spooled).unlink(missing_ok=True)
        raise InputError(f"cannot read {'standard input' if path == STDIN else path}: {exc.strerror}") from None
    return Path(spooled)


def sniffed_format(path: Path) -> str:
    """A spooled stream has no file name to tell its format: its first bytes do (a zip
    an xlsx workbook, '[' a JSON array, '{' JSON lines, anything else CSV)."""
    with path.open("rb") as stream:
        raw = stream.read(_SNIFF_BYTES)
    if raw.startswith(b"PK\x03\x04"):
        return "xlsx"
    head = raw.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"["):
        return "json"
    return "jsonl" if head.startswith(b"{") else "csv"


def keep_spooled(spooled: Path, folder: Path, fmt: str) -> Path:
    """Move a spooled stream into ``folder`` (the data dir's ``spool/``), where it stays
    for as long as its action may need it again (``resume``)."""
    kept = folder / f"{uuid4().hex}.{fmt}"
    kept.parent.mkdir(exist_ok=True)
    shutil.move(spooled, kept)
    return kept


def stream_name(path: str) -> str:
    """What to call a stream's input: ``stdin``, or the pipe's name."""
    return "stdin" if path == STDIN else Path(path).name
