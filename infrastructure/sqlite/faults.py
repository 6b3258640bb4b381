"""Which SQLite errors are infrastructure faults (see application.faults).

``OperationalError`` covers a full disk or database ("database or disk is full"), I/O
errors, a lock held too long and a file that cannot be opened: none is about a record.
Constraint violations (``IntegrityError``) are decisions the stores make themselves.
"""

from __future__ import annotations

import sqlite3


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError)
