"""The code rules in pyproject.toml hold: ruff's lint and format, and mypy strict on
``domain/`` and ``application/``. Run here so the README's test command (and CI)
enforces them, not only a developer's editor."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.unit


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240)


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(("ruff", "check", "--no-cache", "."), id="ruff-lint"),
        pytest.param(("ruff", "format", "--no-cache", "--check", "."), id="ruff-format"),
        pytest.param(("mypy",), id="mypy-strict"),
    ],
)
def test_the_code_passes(command: tuple[str, ...]) -> None:
    done = _run(sys.executable, "-m", *command)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
