"""Keys given twice within one JSON object, which JSON parsers silently read last-wins.

orjson and the stdlib decoder both keep the last value of a repeated key, and a precise
parse (the stdlib decoder with ``object_pairs_hook``) of every record costs several
microseconds. A cheap count decides first, and is exact: each key in the text, at any
depth, is followed by optional white space and a colon; other colons can only be
inside strings. So when the text has exactly as many colons (or ``"\\s*:`` matches) as
the decoded object has keys, no key is repeated and there is no nested object; only
otherwise (colons in values, nested objects) is the text parsed again precisely.
"""

from __future__ import annotations

import json
import re
from typing import Any

DUPLICATE_FIELD = "duplicate_field"  # the error code of a record that repeats a key
_KEY_END = re.compile(r'"[ \t\n\r]*:')
_SHOWN_KEY_CHARS = 100


def repeated_key(value: Any, text: str, start: int = 0, end: int | None = None) -> str | None:
    """A key repeated within one object of ``value``, read from ``text[start:end]``
    (the first found, innermost objects first), or None."""
    end = len(text) if end is None else end
    keys = len(value) if isinstance(value, dict) else 0
    if text.count(":", start, end) == keys or len(_KEY_END.findall(text, start, end)) == keys:
        return None
    return _first_repeated_key(text[start:end])


def _first_repeated_key(text: str) -> str | None:
    found: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> None:
        if not found:
            seen: set[str] = set()
            for key, _ in items:
                if key in seen:
                    found.append(key)
                    break
                seen.add(key)

    # The text was read once already: only its keys matter now, so numbers are not converted.
    json.loads(text, object_pairs_hook=pairs, parse_int=_ignored, parse_float=_ignored, parse_constant=_ignored)
    return found[0] if found else None


def _ignored(text: str) -> None:
    return None


def repeated_key_message(key: str) -> str:
    return f"the key {shown_key(key)!r} is given twice in one object"


def shown_key(key: str) -> str:
    """A key as messages show it: cut short if long (a key may be megabytes)."""
    return key if len(key) <= _SHOWN_KEY_CHARS else key[:_SHOWN_KEY_CHARS] + "..."
