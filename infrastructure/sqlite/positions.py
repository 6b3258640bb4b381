"""Where the relay remembers how far it has published (embedded default)."""

from __future__ import annotations

from pathlib import Path

from infrastructure.sqlite.database import SQLiteDatabase

SCHEMA = "CREATE TABLE IF NOT EXISTS positions (name TEXT PRIMARY KEY, position INTEGER NOT NULL)"


class SQLitePositionStore:
    def __init__(self, path: Path | str) -> None:
        self.db = SQLiteDatabase(path, schema=SCHEMA)

    def get(self, name: str) -> int:
        row = self.db.connection().execute("SELECT position FROM positions WHERE name=?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def set(self, name: str, position: int) -> None:
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO positions VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET position=excluded.position",
                (name, position),
            )

    def close(self) -> None:
        self.db.close()
