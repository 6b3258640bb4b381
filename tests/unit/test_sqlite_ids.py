"""Entity ids as the SQLite stores keep them: exact round trips, and text order."""

from __future__ import annotations

import random
import uuid

import pytest

from infrastructure.sqlite.ids import first_stored_uuid_after, id_bytes, id_text

_UUIDS = sorted(str(uuid.UUID(int=random.Random(7).getrandbits(128) >> n)) for n in range(0, 128, 3))


@pytest.mark.parametrize("entity_id", [*_UUIDS, "e1", "E1", "A2345678-0000-4000-8000-000000000000", "a2345678 0000"])
def test_every_id_reads_back_as_the_text_written(entity_id: str) -> None:
    assert id_text(id_bytes(entity_id)) == entity_id


def test_only_canonical_uuid_texts_are_kept_as_bytes() -> None:
    assert id_bytes(_UUIDS[0]) == uuid.UUID(_UUIDS[0]).bytes
    for text in ["ABCDEF01-2345-6789-abcd-ef0123456789", "abcdef01-2345-6789-abcd-ef01234567 9", "e1"]:
        assert id_bytes(text) == text


def _probes() -> list[str]:
    rng = random.Random(11)
    probes = ["", "e", "e1", "e1-x", "e1zz", "G1", "z", "0", "-", "~", _UUIDS[-1] + "a"]
    for text in rng.sample(_UUIDS, 8):
        for length in range(37):
            probes += [text[:length], text[:length] + rng.choice("-0af9gz~ G")]
    return probes


def test_the_stored_uuids_after_a_text_are_those_whose_text_sorts_after_it() -> None:
    for text in _probes():
        bound = first_stored_uuid_after(text)
        stored = [(u, id_bytes(u)) for u in _UUIDS]
        if bound is None:
            found = []
        else:
            start, inclusive = bound
            found = [u for u, b in stored if isinstance(b, bytes) and (b >= start if inclusive else b > start)]
        assert found == [u for u in _UUIDS if u > text], text
