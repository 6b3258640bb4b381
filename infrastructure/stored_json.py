"""JSON as we store it: compressed, and readable by any zlib or zstd reader.

A stored value is JSON stored one of three ways, told apart by its first byte:
- ``{``: plain JSON (every value stored before compression was);
- ``x`` (0x78): a zlib stream, for JSON of ``COMPRESS_FROM`` bytes or more (in practice
  a chunk's input in ``ChunkQueued``, about 160 KB per 1000 contacts; ~20 bytes a record);
- ``(`` (0x28): a zstd frame compressed with the state dictionary its header names by
  id (``state-dictionary-<id>.zstd-dict`` beside this module), for all smaller JSON:
  the outcome event of each record, ~420 -> ~131 bytes, and each entity's data in the
  SQLite entity store, ~135 -> ~84 (measured in docs/benchmarks.md).
Any language reads each with a zlib or zstd call (``zstd -D <dictionary> -d``).
"""

from __future__ import annotations

import threading
import typing
import zlib
from functools import cache
from pathlib import Path

import zstandard

COMPRESS_FROM = 8192
ZLIB_FIRST_BYTE = 0x78
_ZLIB_LEVEL = 1  # the fastest: a chunk's input is repetitive, level 1 gets most of it

# The dictionary is trained on outcome events (bench/event_dictionary.py trains and
# measures it): ~1.3 us to compress a state, ~0.8 us to decompress it. stdlib zlib with a
# preset dictionary measured 132 bytes at 7 us and 2.5 us: each zlib call sets up its
# window and hashes the dictionary again, while a zstd context is kept and reused. The
# frame names its dictionary by id (the file's name below). A dictionary in use never
# changes (a test pins its digest); a better one gets a new id and file beside it.
STATE_DICTIONARY_ID = 20261201
_ZSTD_FIRST_BYTE = 0x28  # a zstd frame's magic number is 0xFD2FB528, little-endian
_ZSTD_LEVEL = 1


@cache
def state_dictionary(dict_id: int = STATE_DICTIONARY_ID) -> zstandard.ZstdCompressionDict:
    path = Path(__file__).with_name(f"state-dictionary-{dict_id}.zstd-dict")
    return zstandard.ZstdCompressionDict(path.read_bytes())


class ZstdContexts:
    """A compressor and a decompressor of zstd frames with ``dictionary``, set as stored
    values are (bench/event_dictionary.py measures a new dictionary with them)."""

    def __init__(self, dictionary: zstandard.ZstdCompressionDict) -> None:
        self.compressor = zstandard.ZstdCompressor(
            level=_ZSTD_LEVEL, dict_data=dictionary, write_checksum=False, write_content_size=True, write_dict_id=True
        )
        self.decompressor = zstandard.ZstdDecompressor(dict_data=dictionary)


# zstd contexts are not shared between threads: each thread that encodes or decodes
# (chunk workers, the projector, request handlers) makes its own pair on first use.
_per_thread = threading.local()


def _zstd() -> ZstdContexts:
    try:
        return typing.cast(ZstdContexts, _per_thread.contexts)
    except AttributeError:
        _per_thread.contexts = made = ZstdContexts(state_dictionary())
        return made


def unpacked(stored: bytes) -> bytes:
    """The JSON of a stored value, whichever way it was stored."""
    first = stored[0]
    if first == _ZSTD_FIRST_BYTE:  # zstd says so when the frame names another dictionary
        return _zstd().decompressor.decompress(stored)
    if first == ZLIB_FIRST_BYTE:
        return zlib.decompress(stored)
    return stored


def packed(json: bytes) -> bytes:
    """How JSON is stored: zlib level 1 from COMPRESS_FROM bytes, else a zstd frame."""
    if len(json) >= COMPRESS_FROM:
        return zlib.compress(json, _ZLIB_LEVEL)
    return _zstd().compressor.compress(json)
