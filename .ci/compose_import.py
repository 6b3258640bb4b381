"""The hosted workflow's import through ``docker compose`` (job ``compose`` of
.github/workflows/ci.yml): write the sample file with its expected counts, then check
the import's summary against them.

    python .ci/compose_import.py write data/contacts.csv 100000 expected.json
    python .ci/compose_import.py check expected.json import.jsonl
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infrastructure.files.sample import write_contacts_csv


def write(path: str, rows: str, expected: str) -> None:
    counts = write_contacts_csv(Path(path), int(rows))
    Path(expected).write_text(json.dumps(asdict(counts)))
    print(f"wrote {path}: {asdict(counts)}")


def check(expected_path: str, output_path: str) -> int:
    expected = json.loads(Path(expected_path).read_text())
    summary = json.loads(Path(output_path).read_text().strip().splitlines()[-1])
    want = {
        "status": "COMPLETED",
        "total": expected["total"],
        "succeeded": expected["valid"],
        "failed": expected["invalid"],
        "skipped": expected["duplicates"],
    }
    got = {name: summary.get(name) for name in want}
    print(f"expected {want}\ngot      {got}")
    return 0 if got == want else 1


if __name__ == "__main__":
    match sys.argv[1:]:
        case ["write", path, rows, expected]:
            write(path, rows, expected)
        case ["check", expected, output]:
            sys.exit(check(expected, output))
        case _:
            sys.exit(__doc__)
