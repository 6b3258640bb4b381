"""docker-compose.yml and the Dockerfile, checked as far as a machine without a Docker
engine can: the Compose Specification, every command a service runs, every variable
it sets, and what the image copies and installs.

``docker compose config`` runs where the compose plugin answers; where it does not, the
Compose Specification's own JSON schema (vendored by check-jsonschema) checks the file
instead, and the ``docker compose config`` test is reported as skipped with the reason.
"""

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

from infrastructure.settings import PREFIX, Settings

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
OUR_IMAGE = "bulk-action-platform:latest"
# The variables each third-party image reads (its documented prefix).
IMAGE_PREFIXES = {
    "postgres": ("POSTGRES_", "PGDATA"),
    "rabbitmq": ("RABBITMQ_",),
    "mongo": ("MONGO_",),
    "prom/prometheus": (),
}
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus.yml"
DASHBOARD = REPO / "deploy" / "grafana-dashboard.json"


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())  # resolves the `<<:` merges
    return loaded


def _ours(service: dict[str, Any]) -> bool:
    return service.get("image") == OUR_IMAGE or "build" in service


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)


def test_docker_compose_config_accepts_the_file() -> None:
    plugin = _run("docker", "compose", "version") if _docker_client() else None
    if plugin is None or plugin.returncode != 0:
        why = "no docker client" if plugin is None else (plugin.stderr or plugin.stdout).strip().splitlines()[0]
        pytest.skip(f"the docker compose plugin is missing here ({why}); the Compose Specification schema checks it")
    done = _run("docker", "compose", "--profile", "tools", "-f", str(COMPOSE_FILE), "config", "--quiet")
    assert done.returncode == 0, done.stderr


def _docker_client() -> bool:
    return _run("sh", "-c", "command -v docker").returncode == 0


def _schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    return _run(sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path))


def test_the_compose_file_follows_the_compose_specification() -> None:
    done = _schema_check(COMPOSE_FILE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_compose_specification_check_finds_a_misspelt_key(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("  environment: *bulk-env", "  environmnet: *bulk-env"))
    done = _schema_check(broken)
    assert done.returncode != 0 and "environmnet" in done.stdout + done.stderr


def test_every_command_a_service_runs_is_one_the_cli_has_with_those_options() -> None:
    services = _compose()["services"]
    commands = [service["command"] for service in services.values() if _ours(service) and "command" in service]
    assert len(commands) >= 4  # serve, relay, projector, worker
    for command in commands:
        done = _run(sys.executable, "-m", "api.cli", *command, "--help")
        assert done.returncode == 0, f"bulkactions {' '.join(command)}: {done.stderr.strip()}"


def test_the_cli_commands_the_compose_file_documents_exist() -> None:
    documented = re.findall(r"docker compose run --rm cli ([a-z]+)", COMPOSE_FILE.read_text())
    assert "import" in documented
    for command in documented:
        assert _run(sys.executable, "-m", "api.cli", command, "--help").returncode == 0, command


def test_a_service_checked_by_its_alive_file_is_told_to_touch_that_file() -> None:
    for name, service in _compose()["services"].items():
        test = " ".join(service.get("healthcheck", {}).get("test", []))
        if "/tmp/alive" in test:
            assert service["command"][-2:] == ["--alive-file", "/tmp/alive"], name


def test_every_variable_our_services_set_is_a_setting_with_a_valid_value(monkeypatch: pytest.MonkeyPatch) -> None:
    known = {PREFIX + name.upper() for name in Settings.model_fields}
    for name, service in _compose()["services"].items():
        if not _ours(service):
            continue
        environment: dict[str, str] = service["environment"]
        assert set(environment) <= known, f"{name}: {sorted(set(environment) - known)} are not settings"
        for variable, value in environment.items():
            monkeypatch.setenv(variable, str(value))
        Settings()  # raises on a value the processes would refuse


def test_every_variable_a_server_image_gets_is_one_that_image_reads() -> None:
    for name, service in _compose()["services"].items():
        if _ours(service):
            continue
        image = service["image"].split(":")[0]
        prefixes = IMAGE_PREFIXES[image]
        for variable in service.get("environment", {}):
            assert variable.startswith(prefixes), f"{name} ({image}) does not read {variable}"


def test_the_image_copies_every_package_and_installs_extras_that_exist() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    dockerfile = DOCKERFILE.read_text()
    packages = [name.rstrip("*") for name in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    for package in packages:
        assert f"COPY {package} {package}" in dockerfile, package
    extras = re.search(r"pip install [^\n]*'\.\[([a-z,]+)\]'", dockerfile)
    assert extras is not None
    assert set(extras.group(1).split(",")) <= set(project["project"]["optional-dependencies"])
    assert 'ENTRYPOINT ["bulkactions"]' in dockerfile and "bulkactions" in project["project"]["scripts"]
    for variable in re.findall(r"^ENV (\w+)=", dockerfile, flags=re.MULTILINE):
        assert variable.removeprefix(PREFIX).lower() in Settings.model_fields, variable


def test_the_image_runs_a_python_the_project_supports() -> None:
    found = re.search(r"^FROM python:(\d+)\.(\d+)", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert found is not None
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    low, high = re.fullmatch(r">=(\d+\.\d+),<(\d+\.\d+)", requires).groups()  # type: ignore[union-attr]
    version = (int(found.group(1)), int(found.group(2)))
    assert tuple(map(int, low.split("."))) <= version < tuple(map(int, high.split(".")))


def test_the_cli_service_reads_its_input_from_a_mount_and_keeps_its_scratch_in_the_image() -> None:
    """The CLI writes scratch files (the import's key index) under BULK_DATA_DIR as the
    image's unprivileged user; a host directory mounted there is owned by the host's
    user, so the input is mounted read-only elsewhere."""
    cli = _compose()["services"]["cli"]
    data_dir = re.search(r"^ENV BULK_DATA_DIR=(\S+)", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert data_dir is not None
    targets = [volume.split(":")[1] for volume in cli["volumes"]]
    assert data_dir.group(1) not in targets
    assert all(volume.endswith(":ro") for volume in cli["volumes"])


def _scraped() -> set[tuple[str, int]]:
    """(host, port) of every target deploy/prometheus.yml names, by static or DNS name."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    found: set[tuple[str, int]] = set()
    for job in config["scrape_configs"]:
        for dns in job.get("dns_sd_configs", []):
            found.update((name, int(dns["port"])) for name in dns["names"])
        for static in job.get("static_configs", []):
            found.update((host, int(port)) for host, port in (t.rsplit(":", 1) for t in static["targets"]))
    return found


def test_prometheus_scrapes_every_process_on_the_port_it_serves_metrics_on() -> None:
    """Every service of ours that keeps running (not a one-off in a profile, such as
    ``cli``) serves metrics (the API on its port, the others on --metrics-port), and
    deploy/prometheus.yml scrapes each there."""
    services = _compose()["services"]
    assert "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in services["prometheus"]["volumes"]
    expected = set()
    for name, service in services.items():
        if not _ours(service) or service.get("profiles"):
            continue
        command = service["command"]
        option = "--port" if command[0] == "serve" else "--metrics-port"
        assert option in command, f"{name} serves no metrics"
        expected.add((name, int(command[command.index(option) + 1])))
    assert {entry[0] for entry in expected} >= {"serve", "relay", "projector", "worker"}
    assert _scraped() == expected


def test_the_dashboard_queries_only_metrics_the_platform_exports() -> None:
    from infrastructure.prometheus.metrics import exported_names

    dashboard = json.loads(DASHBOARD.read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {name for query in queries for name in re.findall(r"\bbulkactions_[a-z_]+", query)}
    assert used and used <= exported_names(), sorted(used - exported_names())
    # The operator's three questions are on it: records/s, error rate, queue depth.
    assert any("rate(bulkactions_records_total" in q for q in queries)
    assert any('outcome="failed"' in q for q in queries)
    assert any("bulkactions_queue_messages" in q for q in queries)
