"""The code rules in pyproject.toml hold: ruff's lint and format, mypy strict on every
package, and the layer contracts (import-linter). Run here so the README's test
command (and CI) enforces them, not only a developer's editor."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.unit
# import-linter's console script, run with this interpreter (it has no `-m` entry).
_LINT_IMPORTS = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240)


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(("-m", "ruff", "check", "--no-cache", "."), id="ruff-lint"),
        pytest.param(("-m", "ruff", "format", "--no-cache", "--check", "."), id="ruff-format"),
        pytest.param(("-m", "mypy"), id="mypy-strict"),
        pytest.param(("-c", _LINT_IMPORTS), id="layer-contracts"),
    ],
)
def test_the_code_passes(command: tuple[str, ...]) -> None:
    done = _run(sys.executable, *command)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_the_domain_uses_only_the_domain_part_of_the_event_sourcing_library() -> None:
    # import-linter cannot forbid an external package's subpackages: checked here.
    allowed = {"eventsourcing.domain"}
    used = {
        line.split()[1]
        for path in (REPO / "domain").rglob("*.py")
        for line in path.read_text().splitlines()
        if line.startswith(("import eventsourcing", "from eventsourcing"))
    }
    assert used <= allowed, used - allowed
