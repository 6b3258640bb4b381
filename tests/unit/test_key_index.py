from __future__ import annotations

from pathlib import Path

import pytest

from infrastructure.sqlite.key_index import SQLiteKeyIndex

pytestmark = pytest.mark.unit


def test_a_key_seen_before_points_at_its_first_row_across_batches(tmp_path: Path) -> None:
    index = SQLiteKeyIndex(tmp_path)
    assert index.first_rows([("a", 1), ("b", 2), ("a", 3)]) == {3: 1}
    assert index.first_rows([("b", 4), ("c", 5), ("c", 6), ("c", 7)]) == {4: 2, 6: 5, 7: 5}
    assert index.first_rows([]) == {}
    index.close()
    assert list(tmp_path.iterdir()) == []


def test_feeding_the_same_rows_again_on_resume_keeps_the_first_rows(tmp_path: Path) -> None:
    index = SQLiteKeyIndex(tmp_path)
    index.first_rows([("a", 1), ("a", 2)])
    assert index.first_rows([("a", 1), ("a", 2)]) == {2: 1}
    index.close()


def test_batches_larger_than_one_statement_are_handled(tmp_path: Path) -> None:
    index = SQLiteKeyIndex(tmp_path)
    pairs = [(f"k{i % 7000}", i) for i in range(10_000)]
    result = index.first_rows(pairs)
    assert result == {i: i - 7000 for i in range(7000, 10_000)}
    index.close()
