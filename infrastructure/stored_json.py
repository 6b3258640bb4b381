"""JSON as we store it: compressed, and readable by any zlib or zstd reader.

A stored value is JSON stored one of these ways, told apart by its first byte:
- ``{``: plain JSON (every value stored before compression was);
- 0x03, then a zstd frame without its magic number or checksum (no dictionary), for
  JSON of ``COMPRESS_FROM`` bytes or more: in practice a chunk's input in ``ChunkQueued``,
  about 160 KB per 1000 contacts (measured on the benchmark's contacts: 5.9 bytes a
  record at 0.39 ms a chunk, against 19.3 bytes and 0.76 ms with zlib level 1);
- 0x01, 0x02 or 0x04, then a zstd frame without its magic number, dictionary id or
  checksum, compressed with the dictionary that byte names: 0x01 for event states (the
  outcome event of each record, ~420 -> ~118 bytes), 0x02 for entity data (each entity's
  data in the SQLite entity store, ~133 -> ~66), 0x04 for entity data whose first
  field's value is stored elsewhere (as null here; ~55), measured in docs/benchmarks.md. Dropping
  the 4-byte magic number and the 4-byte dictionary id from every frame saves ~8 bytes a
  value, twice a record;
- ``(`` (0x28): a whole zstd frame naming its dictionary by id, and ``x`` (0x78): a zlib
  stream, as the release before stored small and large values (dictionary 20261201);
  still read.
Any language reads each with a zlib or zstd call. For the tagged frames, drop the first
byte and put the zstd magic number back: ``(printf '\\x28\\xb5\\x2f\\xfd'; tail -c +2 value)
| zstd -D infrastructure/<dictionary file> -d``.
"""

from __future__ import annotations

import threading
import typing
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import zstandard

COMPRESS_FROM = 8192
ZLIB_FIRST_BYTE = 0x78
_ZSTD_LEVEL = 1


@dataclass(frozen=True)
class Dictionary:
    """A zstd dictionary of stored values: the first byte of each value stored with it,
    its id and its file beside this module. A dictionary in use never changes (a test
    pins each digest); a better one gets a new tag, id and file beside it
    (bench/event_dictionary.py trains and measures them)."""

    tag: int
    dict_id: int
    file: str


# Trained on outcome events and on entity data of a varied run of imports: ~1-3 us to
# compress a value, ~1 us to decompress it (stdlib zlib with a preset dictionary measured
# 7 us and 2.5 us: each zlib call sets up its window and hashes the dictionary again,
# while a zstd context is kept and reused).
EVENT_STATES = Dictionary(0x01, 20261202, "event-states-20261202.zstd-dict")
ENTITY_DATA = Dictionary(0x02, 20261203, "entity-data-20261203.zstd-dict")
# Entity data whose first field's value is left out (null), because the row holds it
# elsewhere: the SQLite entity store's unique_key column (infrastructure/sqlite/entities.py).
ENTITY_DATA_KEY_FIRST = Dictionary(0x04, ENTITY_DATA.dict_id, ENTITY_DATA.file)
_TAGGED = {d.tag: d for d in (EVENT_STATES, ENTITY_DATA, ENTITY_DATA_KEY_FIRST)}
_LARGE_TAG = 0x03
# The release before stored whole frames naming this dictionary by id.
FRAMED_DICTIONARY_ID = 20261201
_FRAME_FIRST_BYTE = 0x28  # a zstd frame's magic number is 0xFD2FB528, little-endian


@cache
def dictionary_data(file: str) -> zstandard.ZstdCompressionDict:
    return zstandard.ZstdCompressionDict(Path(__file__).with_name(file).read_bytes())


def framed_dictionary() -> zstandard.ZstdCompressionDict:
    return dictionary_data(f"state-dictionary-{FRAMED_DICTIONARY_ID}.zstd-dict")


class ZstdContexts:
    """A compressor and a decompressor of the tagged values' frames with ``dictionary``
    (bench/event_dictionary.py measures a new dictionary with them), or with none."""

    def __init__(self, dictionary: zstandard.ZstdCompressionDict | None) -> None:
        # The content size stays (1-2 bytes): without it each decompression sets up a
        # buffer of the largest size (measured 2.2 us against 1.2 a value).
        parameters = zstandard.ZstdCompressionParameters.from_level(
            _ZSTD_LEVEL,
            format=zstandard.FORMAT_ZSTD1_MAGICLESS,
            write_checksum=0,
            write_content_size=1,
            write_dict_id=0,
        )
        self.compressor = zstandard.ZstdCompressor(dict_data=dictionary, compression_params=parameters)
        self.decompressor = zstandard.ZstdDecompressor(dict_data=dictionary, format=zstandard.FORMAT_ZSTD1_MAGICLESS)


# zstd contexts are not shared between threads: each thread that encodes or decodes
# (chunk workers, the projector, request handlers) makes its own on first use.
_per_thread = threading.local()


def _contexts(tag: int) -> ZstdContexts:
    """This thread's contexts for values stored under ``tag``: one pair per dictionary
    (entity data and entity data keyed first share theirs), and one with none."""
    dictionary = _TAGGED[tag].file if tag in _TAGGED else None
    # Annotated, not typing.cast(dict[...]): the cast built that type object on every
    # call (measured: ~2% of an UPDATE's CPU).
    try:
        kept: dict[str | None, ZstdContexts] = _per_thread.contexts
    except AttributeError:
        kept = _per_thread.contexts = {}
    found = kept.get(dictionary)
    if found is None:
        found = kept[dictionary] = ZstdContexts(None if dictionary is None else dictionary_data(dictionary))
    return found


def _framed() -> zstandard.ZstdDecompressor:
    try:
        return typing.cast(zstandard.ZstdDecompressor, _per_thread.framed)
    except AttributeError:
        _per_thread.framed = made = zstandard.ZstdDecompressor(dict_data=framed_dictionary())
        return made


def unpacked(stored: bytes) -> bytes:
    """The JSON of a stored value, whichever way it was stored."""
    first = stored[0]
    if first in _TAGGED or first == _LARGE_TAG:
        return _contexts(first).decompressor.decompress(stored[1:])
    if first == ZLIB_FIRST_BYTE:
        return zlib.decompress(stored)
    if first == _FRAME_FIRST_BYTE:
        return _framed().decompress(stored)
    return stored


def head_of(stored: bytes, size: int) -> bytes:
    """The first ``size`` bytes (or fewer) of a stored value's JSON, without decompressing
    all of a large one: the relay reads a chunk's action and number from its ``ChunkQueued``."""
    first = stored[0]
    if first == _LARGE_TAG:
        with _contexts(first).decompressor.stream_reader(stored[1:]) as reader:
            return bytes(reader.read(size))
    if first == ZLIB_FIRST_BYTE:
        return zlib.decompressobj().decompress(stored, size)
    return unpacked(stored)[:size]


def packed(json: bytes, dictionary: Dictionary = EVENT_STATES) -> bytes:
    """How JSON is stored: from COMPRESS_FROM bytes a zstd frame with no dictionary, else
    a zstd frame with ``dictionary``; each after its tag byte."""
    tag = _LARGE_TAG if len(json) >= COMPRESS_FROM else dictionary.tag
    return bytes((tag,)) + _contexts(tag).compressor.compress(json)
