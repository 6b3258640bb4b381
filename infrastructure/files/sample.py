"""Deterministic sample contact files with a known number of invalid and duplicate rows."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

INVALID_EVERY = (0, 1, 2)  # of each 100 rows: 3% invalid
DUPLICATE_EVERY = (3, 4, 5)  # of each 100 rows: 3% duplicates of an earlier row
HEADER = ["email", "first_name", "last_name", "phone", "company_domain"]


@dataclass(frozen=True)
class SampleCounts:
    total: int
    valid: int
    invalid: int
    duplicates: int


def _invalid(i: int) -> list[str]:
    kind = i % 3
    if kind == 0:
        return [f"not-an-email-{i}", "Ann", "Invalid", "+1 555 0100", "example.com"]
    if kind == 1:
        return ["", "Bob", "NoEmail", "+1 555 0101", "example.com"]
    return [f"user{i}@example.com", "Cy", "BadPhone", "call me", "example.com"]


def write_contacts_csv(path: Path, rows: int) -> SampleCounts:
    """Row i (0-based) is invalid when i % 100 in INVALID_EVERY, a duplicate (same email
    in other case) of row i - 50 when i % 100 in DUPLICATE_EVERY, else a new contact."""
    invalid = duplicates = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for i in range(rows):
            slot = i % 100
            if slot in INVALID_EVERY:
                writer.writerow(_invalid(i))
                invalid += 1
            elif slot in DUPLICATE_EVERY and i >= 100:
                # Row i - 50 sits in slots 53-55: always a new, valid contact.
                source = i - 50
                writer.writerow([f"Person{source}@Example.com", "Dup", "Licate", "", ""])
                duplicates += 1
            else:
                writer.writerow(
                    [f"person{i}@example.com", "First", f"Last{i}", f"+1 555 {i % 10000:04d}", f"company{i % 997}.com"]
                )
    valid = rows - invalid - duplicates
    return SampleCounts(total=rows, valid=valid, invalid=invalid, duplicates=duplicates)
