"""A text file's dialect: its encoding and (a CSV's) delimiter, named or detected.

- Encoding: the one named (``cp1252``, ``latin-1``, ``utf-16``: any Python codec of
  text), else UTF-16 when the file starts with a UTF-16 byte-order mark, else UTF-8
  (a UTF-8 byte-order mark is dropped). A file that is not valid in its encoding is
  refused up front with the line and byte offset of the first bad byte.
- Delimiter: the one named (one character; ``tab`` and ``\\t`` name a tab), else the
  one of ``,`` ``;`` tab ``|`` that the header line holds most often outside quotes
  (a comma where none does, or on a tie with it).
"""

from __future__ import annotations

import codecs
from pathlib import Path

from application.ports.inputs import InputError

DELIMITERS = (",", ";", "\t", "|")
_NAMED_DELIMITERS = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
_WIDE = ("utf-16", "utf-32")
_BLOCK = 1 << 16


def checked_encoding(name: str | None) -> str | None:
    """The codec's name for a named encoding (None: not named), refusing unknown ones."""
    if name is None:
        return None
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise InputError(f"unknown encoding {name!r} (for example: utf-8, cp1252, latin-1, utf-16)") from None
    if not getattr(info, "_is_text_encoding", True):
        raise InputError(f"{name!r} is not a text encoding")
    return "utf-8-sig" if info.name == "utf-8" else info.name


def detected_encoding(head: bytes) -> str:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"  # the codec reads the mark and drops it
    return "utf-8-sig"


def is_wide(encoding: str) -> bool:
    """Whether text in this encoding holds NUL bytes (so a NUL does not mean binary)."""
    return codecs.lookup(encoding).name.startswith(_WIDE)


def label(encoding: str) -> str:
    name = codecs.lookup(encoding).name
    return "UTF-8" if name in ("utf-8", "utf-8-sig") else name


def checked_delimiter(name: str | None) -> str | None:
    if name is None:
        return None
    delimiter = _NAMED_DELIMITERS.get(name.lower(), name)
    if len(delimiter) != 1 or delimiter in '\r\n"':
        raise InputError(f"a delimiter is one character other than a quote or a line break, not {name!r}")
    return delimiter


def detected_delimiter(head: bytes, encoding: str) -> str:
    """The delimiter the header line (in the first bytes of the file) holds most often."""
    text = head.decode(encoding, errors="ignore")
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif char in "\r\n":
            break
        elif char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])  # the first (a comma) on a tie
    return best if counts[best] > counts[","] else ","


def decode_error(path: Path, name: str, encoding: str) -> InputError:
    """The first byte of ``path`` that is not valid ``encoding``, with its line and offset."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = 0
    lines = 1
    with path.open("rb") as stream:
        while block := stream.read(_BLOCK):
            pending = len(decoder.getstate()[0])
            try:
                lines += decoder.decode(block).count("\n")
            except UnicodeDecodeError as exc:
                good = exc.object[: exc.start]
                lines += good.decode(encoding, errors="ignore").count("\n")
                where = offset - pending + exc.start
                return InputError(
                    f"{name} is not valid {label(encoding)}: byte 0x{exc.object[exc.start]:02x} at line {lines},"
                    f" byte offset {where}{_hint(encoding)}"
                )
            offset += len(block)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return InputError(f"{name} is not valid {label(encoding)}: it ends inside a character (byte offset {offset})")
    return InputError(f"{name} is not valid {label(encoding)}")


def _hint(encoding: str) -> str:
    if label(encoding) == "UTF-8":
        return " (name its encoding, for example cp1252 for a file saved by Excel on Windows)"
    return ""
