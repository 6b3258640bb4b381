"""How the SQLite read models store a log line: an op as one character, and the words
stored before read as they were."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

from application.ports.read_models import ActionView, LogLine, ViewChanges
from infrastructure.sqlite.read_models import SQLiteReadModelStore


def test_ops_are_stored_as_one_character_and_words_stored_before_are_read(tmp_path: Path) -> None:
    store = SQLiteReadModelStore(tmp_path / "readmodels.db")
    action_id = str(uuid.uuid4())
    view = ActionView(action_id, "acc", "contact", "update", None, "f.csv", 2, 2, "2026-01-01T00:00:00+00:00")
    lines = [
        LogLine(action_id, 1, 2, 0, "succeeded", "e1", "created", [], None, None, 5),
        LogLine(action_id, 2, 3, 0, "succeeded", "e2", "updated", [], None, None, 6),
    ]
    store.apply("actions", 6, ViewChanges(new_actions=[view], log_lines=lines))
    with sqlite3.connect(tmp_path / "readmodels.db") as conn:
        assert [row[0] for row in conn.execute("SELECT op FROM record_logs ORDER BY row")] == ["0", "1"]
        conn.execute("UPDATE record_logs SET op='created' WHERE row=2")  # as the release before stored it
    conn.close()
    assert [line.op for line in store.logs(action_id)] == ["created", "created"]
    store.close()
