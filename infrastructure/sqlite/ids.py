"""Entity ids as the SQLite stores keep them: the text of a UUID (lowercase, dashed:
every id the application makes) as its 16 bytes, a third of the text's size in every
index that holds ids; any other id as its own text, so each id reads back exactly as
it was written. SQLite keeps each value's type, and orders all text before all bytes.

For canonical ids the order of the bytes is the order of the texts (lowercase hex
digits sort as their values do, and the dashes stand at the same places in each).
"""

from __future__ import annotations

_HEX = "0123456789abcdef"
_LAYOUT = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"  # x: a hex digit


def id_bytes(entity_id: str) -> bytes | str:
    """An entity id as stored: the 16 bytes of a canonical UUID text, else the text."""
    if len(entity_id) == 36 and entity_id[8] == entity_id[13] == entity_id[18] == entity_id[23] == "-":
        # Its hex digits are its bytes, no UUID() needed (it runs once per record).
        digits = entity_id.replace("-", "")
        try:
            stored = bytes.fromhex(digits)
        except ValueError:
            return entity_id
        # fromhex also reads uppercase digits and skips spaces: such an id stays text,
        # or it would read back as another text than the one written.
        return stored if len(stored) == 16 and stored.hex() == digits else entity_id
    return entity_id


def id_text(stored: bytes | str) -> str:
    """The entity id as it was written (``str(UUID(bytes=...))``, without the UUID)."""
    if isinstance(stored, str):
        return stored
    h = stored.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def first_stored_uuid_after(text: str) -> tuple[bytes, bool] | None:
    """Where the canonical ids whose text sorts after ``text`` begin among stored bytes:
    (bound, inclusive), or None when no canonical id sorts after it. Paging in text
    order reads the text ids and the byte ids as two ranges and merges them."""
    if len(text) == 36 and isinstance(stored := id_bytes(text), bytes):
        return stored, False
    matched = 0  # how many leading characters of text fit the layout
    while matched < min(len(text), 36) and text[matched] in (_HEX if _LAYOUT[matched] == "x" else "-"):
        matched += 1
    digits = text[:matched].replace("-", "")
    if matched == 36:  # a canonical id and more: the ids after it are the greater ones
        digits = _next(digits)
        if digits == "":
            return None
    elif matched < len(text):
        # The first character that leaves the layout: canonical texts with the same
        # prefix sort after text when their next character is greater than it.
        allowed = _HEX if _LAYOUT[matched] == "x" else "-"
        greater = [c for c in allowed if c > text[matched]]
        if greater:
            digits += greater[0] if greater[0] != "-" else ""
        else:
            digits = _next(digits)
            if digits == "":
                return None
    return bytes.fromhex(digits.ljust(32, "0")), True


def _next(digits: str) -> str:
    """The hex number one greater with as many digits, or "" when there is none."""
    if not digits:
        return ""
    following = int(digits, 16) + 1
    return "" if following >= 16 ** len(digits) else f"{following:0{len(digits)}x}"
