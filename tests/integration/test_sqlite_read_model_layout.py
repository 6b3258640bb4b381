"""How the SQLite read models store a log line (an op as one character, the words stored
before read as they were) and the audit trail's index (no entry where a log line names
the entity its row inserted)."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

from application.ports.read_models import ActionView, EntityHistoryEntry, LogLine, ViewChanges
from domain.bulk_action import entity_id_for
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


def test_an_entity_its_row_inserted_is_in_the_audit_trail_from_its_log_line_alone(tmp_path: Path) -> None:
    store = SQLiteReadModelStore(tmp_path / "readmodels.db")
    action_id = str(uuid.uuid4())
    view = ActionView(action_id, "acc", "contact", "insert", None, "f.csv", 2, 2, "2026-01-01T00:00:00+00:00")
    own, other = str(entity_id_for(uuid.UUID(action_id), 1)), str(uuid.uuid4())
    changes = ViewChanges(new_actions=[view])
    changes.log_lines += [
        LogLine(action_id, 1, 2, 0, "succeeded", own, "created", [], None, None, 5),
        LogLine(action_id, 2, 3, 0, "succeeded", other, "created", [], None, None, 6),
    ]
    changes.entity_history += [EntityHistoryEntry(own, 5), EntityHistoryEntry(other, 6)]
    store.apply("actions", 6, changes)
    with sqlite3.connect(tmp_path / "readmodels.db") as conn:
        stored = conn.execute("SELECT position FROM entity_history").fetchall()
    conn.close()
    assert stored == [(6,)]  # the entity a row inserted under another id keeps its entry
    assert store.entity_positions(own) == [5]
    assert store.entity_positions(other) == [6]
    store.close()
