"""JSON read one value at a time from a text stream, with line numbers.

The stdlib decoder (``json.JSONDecoder.raw_decode``, its C scanner) parses each value;
this module only walks the structure around the values, block by block, so a JSON
array of a million records, or an object with such an array as one member, is never
held whole in memory: only the value being decoded is.

Every value decoded is one the event store can hold (``storable``): a lone surrogate,
a number out of a double's range, NaN or a value nested deeper than ``MAX_NESTING``
is an ``InputError`` where it is read. A key repeated within one object is not: the
caller decides (``repeated_key``), since a record that repeats a key fails alone.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from application.ports.inputs import InputError
from infrastructure.files.repeated_keys import repeated_key, shown_key
from infrastructure.files.storable import MAX_NESTING, NotStorableError, check_storable

BLOCK_CHARS = 1 << 16
MAX_VALUE_CHARS = 64 << 20
# A decode error this close to the end of the buffer may only mean the value goes on in
# the next block ("tru" of true, a "\u12" escape cut short); further back it is real.
_CUT_MARGIN = 8
_WHITE_SPACE = re.compile(r"[ \t\r\n]*")
# A value up to this long is copied out to be checked in a few fast scans (see _check).
_USUAL_RECORD_CHARS = 4096


# Longer than any 64-bit integer ("-9223372036854775808" has 20 characters): read as a
# float without int(), which refuses more than 4300 digits and is quadratic before that.
_LONGEST_INTEGER = 20
_SHOWN_NUMBER_CHARS = 40


def _integer(text: str) -> int | float:
    # orjson, which encodes events, holds 64-bit integers; a larger one becomes a float,
    # as orjson.loads (the JSON-lines reader) reads it.
    if len(text) > _LONGEST_INTEGER:
        return _finite(text)
    value = int(text)
    return value if -(1 << 63) <= value < (1 << 64) else float(value)


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise NotStorableError(f"holds {_shown_number(text)}, which is out of range for a double")
    return value


def _shown_number(text: str) -> str:
    if len(text) <= _SHOWN_NUMBER_CHARS:
        return text
    digits = text.lstrip("-")
    return f"a number of {len(digits)} digits" if digits.isdigit() else f"a number of {len(text)} characters"


class _NotJsonError(ValueError):
    """NaN, Infinity, -Infinity: read by the stdlib decoder, but not JSON."""


def _no_constant(text: str) -> Any:
    raise _NotJsonError(f"{text} is not valid JSON")


class JsonTextStream:
    def __init__(self, text: io.TextIOBase, name: str, *, max_value_chars: int = MAX_VALUE_CHARS) -> None:
        self.text = text
        self.name = name
        self.max_value_chars = max_value_chars
        self.decoder = json.JSONDecoder(parse_int=_integer, parse_float=_finite, parse_constant=_no_constant)
        # A key repeated within one object of the last value decoded (which keeps its
        # last value), or None: for the caller to refuse.
        self.repeated_key: str | None = None
        self.buffer = ""
        self.pos = 0
        # Line numbers are counted forward from the last place counted: counting from
        # the start of the buffer for every value made reading quadratic in the block.
        self._counted_to = 0
        self._line_at_counted = 1
        self.eof = False

    def line(self) -> int:
        """The line of the next character."""
        self._line_at_counted += self.buffer.count("\n", self._counted_to, self.pos)
        self._counted_to = self.pos
        return self._line_at_counted

    def where(self) -> str:
        return f"line {self.line()}"

    def _fill(self, chars: int = BLOCK_CHARS) -> bool:
        block = self.text.read(chars)
        if not block:
            self.eof = True
            return False
        self.line()
        self.buffer = self.buffer[self.pos :] + block
        self.pos = self._counted_to = 0
        return True

    def peek(self) -> str | None:
        """The next character that is not white space (not consumed), None at the end."""
        while True:
            buffer = self.buffer
            white = _WHITE_SPACE.match(buffer, self.pos)  # always matches, maybe empty
            pos = self.pos = white.end() if white else self.pos
            if pos < len(buffer):
                return buffer[pos]
            if not self._fill():
                return None

    def take(self, char: str) -> bool:
        """Consume ``char`` if it comes next."""
        if self.peek() == char:
            self.pos += 1
            return True
        return False

    def value(self) -> Any:
        """Decode the next value, reading more blocks while it is incomplete."""
        self.peek()
        return self._decode()

    def _decode(self) -> Any:
        """Decode the value at ``pos``: only one the event store can hold (see
        ``storable``); ``repeated_key`` tells whether it repeats a key."""
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buffer, self.pos)
            except _NotJsonError as exc:
                raise InputError(f"{self.name}: invalid JSON in the value at {self.where()}: {exc}") from None
            except NotStorableError as exc:
                raise self._not_storable(str(exc)) from None
            except RecursionError:  # the C scanner recurses once per level: far past the limit
                raise self._not_storable(f"is nested deeper than {MAX_NESTING} levels") from None
            except json.JSONDecodeError as exc:
                cut = exc.msg.startswith("Unterminated string") or exc.pos >= len(self.buffer) - _CUT_MARGIN
                if cut and self._more():
                    continue
                self.pos = exc.pos
                raise InputError(f"{self.name}: invalid JSON at {self.where()}: {exc.msg}") from None
            if end == len(self.buffer) and self._more():
                continue  # a number may go on in the next block
            self._check(value, end)
            self.pos = end
            return value

    def _check(self, value: Any, end: int) -> None:
        """Refuse a value the event store cannot hold; find a key it repeats."""
        buffer, start = self.buffer, self.pos
        if type(value) is dict and end - start <= _USUAL_RECORD_CHARS:
            text = buffer[start:end]
            if text.count(":") == len(value) and "[" not in text and "\\" not in text:
                # The usual record, told in three scans: as many colons as keys means no
                # key is repeated and any nested object is empty (see repeated_keys), so
                # without arrays it nests at most 2 levels; without escapes it holds no
                # surrogate.
                self.repeated_key = None
                return
        try:
            check_storable(value, buffer, start, end)
        except NotStorableError as exc:
            raise self._not_storable(str(exc)) from None
        self.repeated_key = repeated_key(value, buffer, start, end)

    def _not_storable(self, why: str) -> InputError:
        return InputError(f"{self.name}: the value at {self.where()} {why}")

    def _more(self) -> bool:
        """Read more of the value being decoded: as much again as is buffered, so that
        decoding a long value costs linear, not quadratic, time."""
        if self.eof:
            return False
        pending = len(self.buffer) - self.pos
        if pending > self.max_value_chars:
            raise InputError(
                f"{self.name}: the value at {self.where()} is longer than {self.max_value_chars:,} characters"
            )
        return self._fill(max(BLOCK_CHARS, pending))

    def array_items(self, what: str, *, lines: bool = True) -> Iterator[tuple[int, Any]]:
        """The items of the array that comes next, each with the line it starts on (0
        without ``lines``, which costs a count of every newline)."""
        if not self.take("["):
            raise InputError(f"{self.name}: expected {what} to be an array at {self.where()}")
        if self.take("]"):
            return
        while True:
            if self.peek() is None:
                raise InputError(f"{self.name}: the JSON array is not closed")
            yield (self.line() if lines else 0), self._decode()
            buffer, pos = self.buffer, self.pos
            if pos < len(buffer) and buffer[pos] == ",":  # the usual case, without a peek
                self.pos = pos + 1
                continue
            if self.take(","):
                continue
            if self.take("]"):
                return
            raise InputError(f"{self.name}: expected ',' or ']' at {self.where()}")

    def end(self, after: str) -> None:
        if self.peek() is not None:
            raise InputError(f"{self.name}: unexpected data after {after} at {self.where()}")


@dataclass
class StreamedObject:
    """One JSON object read by ``read_object_streaming``."""

    members: dict[str, Any]  # every member but the streamed array
    streamed: bool  # whether the streamed member was there as an array
    repeated_keys: dict[str, str] = field(default_factory=dict)  # member -> a key it repeats


def read_object_streaming(
    stream: JsonTextStream, streamed_member: str, on_item: Callable[[Any], None]
) -> StreamedObject:
    """Read one JSON object whose ``streamed_member``, if it is an array, is handed item
    by item to ``on_item`` instead of being kept (``stream.repeated_key`` tells, during
    the call, whether the item repeats a key). A non-array value of the streamed member
    is returned among the members, for the caller's validation to refuse."""
    if not stream.take("{"):
        raise InputError(f"{stream.name}: expected one JSON object ({{...}})")
    found = StreamedObject({}, streamed=False)
    members = found.members
    if not stream.take("}"):
        while True:
            if stream.peek() != '"':
                raise InputError(f"{stream.name}: expected a member name at {stream.where()}")
            key = stream.value()
            if key in members or (key == streamed_member and found.streamed):
                raise InputError(f"{stream.name}: member {key!r} is given twice")
            if not stream.take(":"):
                raise InputError(f"{stream.name}: expected ':' at {stream.where()}")
            _read_member(stream, key, key == streamed_member, on_item, found)
            if stream.take(","):
                continue
            if stream.take("}"):
                break
            raise InputError(f"{stream.name}: expected ',' or '}}' at {stream.where()}")
    stream.end("the JSON object")
    return found


def _read_member(
    stream: JsonTextStream, key: str, streaming: bool, on_item: Callable[[Any], None], found: StreamedObject
) -> None:
    """One member's value, streamed if it is the streamed array; an error inside the
    value names the member (and the item), as a body is often sent on one line."""
    item: int | None = None
    try:
        if streaming and stream.peek() == "[":
            item = 0
            for _, value in stream.array_items(key, lines=False):
                on_item(value)
                item += 1
            found.streamed = True
            return
        found.members[key] = stream.value()
    except InputError as exc:
        inside = shown_key(key) if item is None else f"{shown_key(key)}.{item}"
        raise InputError(f"{exc} (in {inside})") from None
    if stream.repeated_key is not None:
        found.repeated_keys[key] = stream.repeated_key
