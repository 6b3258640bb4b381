"""The JSON log formatter: one line per record, the work in hand from the log context."""

from __future__ import annotations

import json
import logging

from application.log_context import working_on
from infrastructure.logs import JsonFormatter


def _record(message: str, *args: object, exc_info: object = None) -> logging.LogRecord:
    return logging.LogRecord("x.y", logging.ERROR, __file__, 1, message, args, exc_info)  # type: ignore[arg-type]


def test_a_line_inside_work_on_a_chunk_names_the_action_and_chunk() -> None:
    with working_on("a-1", 7):
        entry = json.loads(JsonFormatter().format(_record("chunk %d: %s", 7, "done")))
    assert (entry["action_id"], entry["chunk_no"], entry["message"], entry["level"]) == (
        "a-1",
        7,
        "chunk 7: done",
        "ERROR",
    )
    assert json.loads(JsonFormatter().format(_record("later")))["action_id"] is None  # the context ended


def test_an_exception_with_line_breaks_stays_on_one_line() -> None:
    try:
        raise ValueError('bad "value"\nsecond line')
    except ValueError:
        import sys

        text = JsonFormatter().format(_record("failed", exc_info=sys.exc_info()))
    assert "\n" not in text
    assert 'ValueError: bad "value"\nsecond line' in json.loads(text)["exception"]
