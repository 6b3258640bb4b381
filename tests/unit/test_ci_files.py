"""The hosted workflow (.github/workflows/ci.yml) is checked here, so a broken workflow
fails in our own test run and not on the host: actionlint (with shellcheck on its
``run:`` scripts), the GitHub workflow schema, and that it runs what it promises."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import containers

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"
BIN = Path(sys.executable).parent  # the dev extra's actionlint and shellcheck live beside python


def _workflow() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def _actionlint(root: Path, path: Path) -> subprocess.CompletedProcess[str]:
    for tool in ("actionlint", "shellcheck"):
        assert (BIN / tool).exists(), f"{tool} is missing: pip install -e '.[dev]'"
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(root)}
    return subprocess.run(
        [str(BIN / "actionlint"), "-no-color", str(path.relative_to(root))],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_workflow_passes_actionlint_and_shellcheck() -> None:
    done = _actionlint(REPO, WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("find", "replace", "reported"),
    [
        ("${{ matrix.python }}", "${{ matrix.pyhton }}", "pyhton"),
        ("docker compose build", "docker compose build\n          cd $UNQUOTED", "SC2086"),
    ],
    ids=["expression", "shell"],
)
def test_actionlint_here_finds_a_broken_expression_and_a_shell_mistake(
    tmp_path: Path, find: str, replace: str, reported: str
) -> None:
    broken = tmp_path / ".github" / "workflows" / "ci.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(WORKFLOW.read_text().replace(find, replace, 1))
    done = _actionlint(tmp_path, broken)
    assert done.returncode != 0 and reported in done.stdout, done.stdout + done.stderr


def test_the_workflow_follows_the_github_workflow_schema() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _readme_test_command() -> str:
    """The README's second bash block's first line, as .ci/run reads it."""
    blocks = re.findall(r"^```bash\n(.*?)^```", (REPO / "README.md").read_text(), flags=re.MULTILINE | re.DOTALL)
    return next(line for line in blocks[1].splitlines() if line.strip())


def _step(job: str, name: str) -> dict[str, Any]:
    return next(step for step in _workflow()["jobs"][job]["steps"] if step.get("name") == name)


def test_the_workflow_runs_the_readme_test_command_verbatim_against_a_real_replica_set() -> None:
    assert _step("tests", "README test command")["run"].strip() == _readme_test_command()
    assert "replicaSet=rs0" in _workflow()["jobs"]["tests"]["env"]["BULK_MONGODB_URI"]
    assert "--replSet rs0" in _step("tests", "Start MongoDB 7 (single-node replica set)")["run"]


def test_the_workflow_tests_every_python_the_project_supports() -> None:
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    low, high = (int(part.split(".")[1]) for part in re.fullmatch(r">=(3\.\d+),<(3\.\d+)", requires).groups())  # type: ignore[union-attr]
    assert _workflow()["jobs"]["tests"]["strategy"]["matrix"]["python"] == [f"3.{minor}" for minor in range(low, high)]


def test_the_workflow_servers_are_the_images_the_test_containers_use() -> None:
    job = _workflow()["jobs"]["tests"]
    assert job["services"]["postgres"]["image"] == containers.POSTGRES_IMAGE
    assert job["services"]["rabbitmq"]["image"] == containers.RABBITMQ_IMAGE
    assert f" {containers.MONGO_IMAGE} " in _step("tests", "Start MongoDB 7 (single-node replica set)")["run"]


def test_the_compose_job_imports_100000_rows_through_the_cli_service_and_verifies() -> None:
    steps = "\n".join(step.get("run", "") for step in _workflow()["jobs"]["compose"]["steps"])
    assert ".ci/compose_import.py write data/contacts.csv 100000 expected.json" in steps
    assert "docker compose run --rm -T cli import /input/contacts.csv" in steps
    assert ".ci/compose_import.py check expected.json import.jsonl" in steps
    assert "docker compose run --rm -T cli verify" in steps


@pytest.mark.parametrize(("succeeded", "exit_code"), [(943, 0), (944, 1)])
def test_the_compose_import_check_passes_exact_counts_only(tmp_path: Path, succeeded: int, exit_code: int) -> None:
    script = REPO / ".ci" / "compose_import.py"
    expected = tmp_path / "expected.json"
    wrote = subprocess.run(
        [sys.executable, str(script), "write", str(tmp_path / "c.csv"), "1000", str(expected)], check=False
    )
    assert wrote.returncode == 0
    summary = {"status": "COMPLETED", "total": 1000, "succeeded": succeeded, "failed": 30, "skipped": 27}
    output = tmp_path / "import.jsonl"
    output.write_text(json.dumps({"action_id": "x", "created": True}) + "\n" + json.dumps(summary) + "\n")
    checked = subprocess.run([sys.executable, str(script), "check", str(expected), str(output)], check=False)
    assert checked.returncode == exit_code
