"""Which server each store's tests run against (tests/servers.py), decided with the
probes answering as a machine with or without a Docker engine would.

The candidate lists are the real ones; only what they ask the machine (is an engine
there, is the local server up) and what starting a server would do are replaced, by
recorders: a container cannot be started on a machine without an engine.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests import mongo_server, servers
from tests.integration import production_stack
from tests.servers import Server, Stops

pytestmark = pytest.mark.unit

NO_ENGINE = "no Docker engine answers (DockerException: no socket)"


class Started:
    """Records which starters ran; each returns a server named after itself."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def starter(self, name: str, fails: bool = False) -> Callable[[Stops], Server]:
        def start(stops: Stops) -> Server:
            self.names.append(name)
            if fails:
                raise RuntimeError(f"{name} would not start")
            stops.append(lambda: None)
            return Server(name, f"uri-of-{name}")

        return start


def engine(monkeypatch: pytest.MonkeyPatch, module: object, answers: bool) -> None:
    monkeypatch.setattr(module, "docker_engine_error", lambda: None if answers else NO_ENGINE)


@pytest.fixture
def mongo(monkeypatch: pytest.MonkeyPatch) -> Started:
    started = Started()
    monkeypatch.delenv("BULK_MONGODB_URI", raising=False)
    monkeypatch.setattr(mongo_server.containers, "mongo_replica_set", started.starter("container"))
    monkeypatch.setattr(mongo_server, "_nx", started.starter("nx"))
    monkeypatch.setattr(mongo_server, "_given", started.starter("given"))
    return started


def choose_mongo() -> servers.Choice:
    return servers.choose(mongo_server.candidates(), [])


def test_mongodb_runs_in_a_replica_set_container_when_a_docker_engine_answers(
    mongo: Started, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine(monkeypatch, mongo_server, answers=True)
    choice = choose_mongo()
    assert choice.server is not None and choice.server.label == "container"
    assert mongo.names == ["container"]
    assert choice.passed_over == ("BULK_MONGODB_URI: not set",)


def test_mongodb_falls_back_to_nx_27017_without_a_docker_engine_and_says_why(
    mongo: Started, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine(monkeypatch, mongo_server, answers=False)
    choice = choose_mongo()
    assert choice.server is not None and choice.server.label == "nx"
    assert mongo.names == ["nx"]
    assert choice.passed_over == ("BULK_MONGODB_URI: not set", f"mongo:7 container: {NO_ENGINE}")


def test_bulk_mongodb_uri_overrides_even_a_docker_engine(mongo: Started, monkeypatch: pytest.MonkeyPatch) -> None:
    engine(monkeypatch, mongo_server, answers=True)
    monkeypatch.setenv("BULK_MONGODB_URI", "mongodb://db.example:27017")
    choice = choose_mongo()
    assert choice.server is not None and choice.server.label == "given"
    assert mongo.names == ["given"]


def test_a_bulk_mongodb_uri_that_does_not_answer_fails_instead_of_falling_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = Started()
    engine(monkeypatch, mongo_server, answers=True)
    monkeypatch.setenv("BULK_MONGODB_URI", "mongodb://db.example:27017")
    monkeypatch.setattr(mongo_server, "_given", started.starter("given", fails=True))
    monkeypatch.setattr(mongo_server.containers, "mongo_replica_set", started.starter("container"))
    choice = choose_mongo()
    assert choice.server is None and started.names == ["given"]
    assert choice.failure == "BULK_MONGODB_URI: did not start (RuntimeError: given would not start)"


def test_a_container_that_does_not_start_falls_back_to_nx_27017_with_the_reason(
    mongo: Started, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine(monkeypatch, mongo_server, answers=True)
    monkeypatch.setattr(mongo_server.containers, "mongo_replica_set", mongo.starter("container", fails=True))
    choice = choose_mongo()
    assert choice.server is not None and choice.server.label == "nx"
    assert mongo.names == ["container", "nx"]
    assert "mongo:7 container: did not start (RuntimeError: container would not start)" in choice.passed_over


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> Started:
    started = Started()
    for variable in ("BULK_TEST_POSTGRES", "BULK_TEST_RABBITMQ"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(production_stack.containers, "postgres", started.starter("postgres container"))
    monkeypatch.setattr(production_stack.containers, "rabbitmq", started.starter("rabbitmq container"))
    return started


def local_servers(monkeypatch: pytest.MonkeyPatch, up: bool) -> None:
    down = None if up else "connection refused"
    monkeypatch.setattr(production_stack, "_postgres_unreachable", lambda dsn: down)
    monkeypatch.setattr(production_stack, "_rabbitmq_unreachable", lambda url: down)


def choose_production() -> tuple[servers.Choice, servers.Choice]:
    return (
        servers.choose(production_stack._postgres_candidates(), []),
        servers.choose(production_stack._rabbitmq_candidates(), []),
    )


def test_the_local_postgresql_and_rabbitmq_are_used_when_they_answer_even_with_an_engine(
    production: Started, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine(monkeypatch, production_stack, answers=True)
    local_servers(monkeypatch, up=True)
    postgres, rabbitmq = choose_production()
    assert postgres.server is not None and postgres.server.uri == production_stack.LOCAL_POSTGRES
    assert rabbitmq.server is not None and rabbitmq.server.uri == production_stack.LOCAL_RABBITMQ
    assert production.names == []


def test_containers_replace_absent_local_servers_when_a_docker_engine_answers(
    production: Started, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine(monkeypatch, production_stack, answers=True)
    local_servers(monkeypatch, up=False)
    postgres, rabbitmq = choose_production()
    assert postgres.server is not None and postgres.server.label == "postgres container"
    assert rabbitmq.server is not None and rabbitmq.server.label == "rabbitmq container"
    assert "local server: connection refused" in postgres.passed_over


def test_without_local_servers_or_an_engine_the_tests_fail_with_every_reason(
    production: Started, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine(monkeypatch, production_stack, answers=False)
    local_servers(monkeypatch, up=False)
    for choice in choose_production():
        assert choice.server is None
        assert choice.failure is not None
        assert "local server: connection refused" in choice.failure and NO_ENGINE in choice.failure
    assert production.names == []


def test_the_summary_names_the_server_and_what_was_passed_over(mongo: Started, monkeypatch: pytest.MonkeyPatch) -> None:
    engine(monkeypatch, mongo_server, answers=False)
    store = servers.Store("MongoDB", mongo_server.candidates)
    assert store.summary() == "MongoDB: not used in this run"
    assert store.get().label == "nx"
    assert store.summary() == (
        f"MongoDB: nx at uri-of-nx (passed over: BULK_MONGODB_URI: not set; mongo:7 container: {NO_ENGINE})"
    )
    store.stop()
    assert store.stops == []


def test_under_xdist_the_summary_merges_what_each_worker_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(servers, "STORES", {"Redis": servers.Store("Redis", list)})  # chosen by no one
    postgres = "PostgreSQL: local server at postgresql://pg (passed over: BULK_TEST_POSTGRES: not set)"
    workers = {
        "gw1": {"PostgreSQL": postgres, "MongoDB": "MongoDB: nx at uri-b"},
        "gw0": {"PostgreSQL": postgres, "MongoDB": "MongoDB: nx at uri-a"},
        "gw2": {},
    }
    assert servers.summary_lines(workers) == [
        "MongoDB: nx at uri-a [gw0]",
        "MongoDB: nx at uri-b [gw1]",
        postgres,
        "RabbitMQ: not used in this run",
        "Redis: not used in this run",
    ]
    assert servers.summary_lines() == [
        f"{name}: not used in this run" for name in ("MongoDB", "PostgreSQL", "RabbitMQ", "Redis")
    ]
