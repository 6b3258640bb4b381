"""How every process writes its log: text (the default) or, with ``BULK_LOG_FORMAT=json``,
one JSON object per line with ``time``, ``level``, ``process``, ``logger``, ``message``,
``action_id`` and ``chunk_no`` (null when the line is about no action), and
``exception`` when there is one.

Why a 20-line ``logging.Formatter`` and not python-json-logger: the fields are fixed
and few, orjson is already a dependency (and escapes every string correctly), and the
two fields that matter most come from the work in hand on the thread
(``application.log_context``) rather than from each call's ``extra``, which the
library would not fill in. One dependency less to pin for a dozen lines.
"""

from __future__ import annotations

import logging
import multiprocessing
import sys
from datetime import UTC, datetime

import orjson

from application.log_context import current
from infrastructure.settings import LogSettings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_process = {"name": ""}  # set once per process by configure_logging


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        action_id, chunk_no = current()
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "process": _process["name"] or multiprocessing.current_process().name,
            "pid": record.process,
            "logger": record.name,
            "message": record.getMessage(),
            "action_id": getattr(record, "action_id", action_id),
            "chunk_no": getattr(record, "chunk_no", chunk_no),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(settings: LogSettings | None = None, process: str = "") -> None:
    """Log to stderr at the settings' level, in their format; ``process`` names this
    process in JSON lines (a child process started by ``multiprocessing`` is named by it)."""
    settings = settings or LogSettings()
    _process["name"] = process
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT))
    # Like basicConfig before: nothing changes where logging is set up already (a test
    # runner's capture).
    logging.basicConfig(level=settings.log_level, handlers=[handler])


def name_process(process: str) -> None:
    """Name this process in JSON lines once its role is known (the CLI's command)."""
    _process["name"] = process
