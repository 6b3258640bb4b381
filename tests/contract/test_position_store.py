"""Contract of the PositionStore port (the relay's memory of how far it published)."""

from __future__ import annotations

import uuid
from typing import Any


def test_an_unknown_name_starts_at_zero(position_store: Any) -> None:
    assert position_store.get(f"relay-{uuid.uuid4()}") == 0


def test_a_set_position_is_read_back_per_name(position_store: Any) -> None:
    one, two = f"relay-{uuid.uuid4()}", f"relay-{uuid.uuid4()}"
    position_store.set(one, 41)
    position_store.set(one, 42)
    position_store.set(two, 7)
    assert (position_store.get(one), position_store.get(two)) == (42, 7)
