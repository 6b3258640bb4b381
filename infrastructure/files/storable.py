"""What the event store's JSON can hold, checked where input is read.

Every event is encoded by orjson (``infrastructure/events/mapper.py``), and the input
records are kept in ``ChunkQueued`` events. orjson 3 cannot write (measured here, 3.13):
- a string holding a lone UTF-16 surrogate: ``"\\ud800"`` is read by the stdlib decoder
  (the JSON-array reader and the API's JSON body) but ``orjson.dumps`` raises on it;
  ``orjson.loads`` (the JSON-lines reader) already refuses it;
- an integer outside [-2**63, 2**64): ``json_stream`` reads such an integer as a float,
  as ``orjson.loads`` does;
- a value nested more than 254 levels in the whole event (``orjson.dumps`` raises
  "Recursion limit reached"); a record sits four levels down (event, records, record,
  data), and ``orjson.loads`` reads up to 1024 levels.

So a record may nest at most ``MAX_NESTING`` levels of objects and arrays (the record
itself is the first): far from orjson's limit (and from MongoDB's 100 levels, though
inputs are kept there as bytes), and far above anything a CRM record needs (a valid
record is flat). An input is checked where it is read, by the scan and by the second
read alike, so an accepted input can always be stored.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

MAX_NESTING = 32

# A lone surrogate can only come from a \uD800-\uDFFF escape: the text itself was decoded
# from strict UTF-8, which holds none. Paired ones match too: the exact check decides.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class NotStorableError(ValueError):
    """A value the event store cannot hold; the message says why, without the value."""


def nested_deeper_than_limit(value: Any, text: str, start: int = 0, end: int | None = None) -> bool:
    """Whether ``value``, read from ``text[start:end]``, nests deeper than ``MAX_NESTING``.
    Exact; walks the value only when the text has more brackets than the limit."""
    end = len(text) if end is None else end
    if text.count("{", start, end) + text.count("[", start, end) <= MAX_NESTING:
        return False
    return _depth_exceeds(value, MAX_NESTING)


def _depth_exceeds(value: Any, limit: int) -> bool:
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def check_storable(value: Any, text: str, start: int = 0, end: int | None = None) -> None:
    """Raise ``NotStorableError`` if ``value``, read by the stdlib decoder from
    ``text[start:end]``, could not be stored. Integers are bounded when read."""
    if isinstance(value, (dict, list)) and nested_deeper_than_limit(value, text, start, end):
        raise NotStorableError(f"is nested deeper than {MAX_NESTING} levels")
    if _SURROGATE_ESCAPE.search(text, start, len(text) if end is None else end) is None:
        return
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        if "surrogates" in str(exc):
            raise NotStorableError(
                "holds a lone UTF-16 surrogate (a \\ud800-\\udfff escape without its pair)"
            ) from None
        raise NotStorableError(f"cannot be stored: {exc}") from None
