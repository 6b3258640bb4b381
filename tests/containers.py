"""Real servers in throwaway containers (testcontainers), for machines with a Docker engine.

Each starter returns the ``Server`` and appends its container's ``stop`` to ``stops``;
the test session stops them at its end (``tests/servers.py``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tests.servers import Server, Stops
from tests.waiting import wait_for

MONGO_IMAGE = "mongo:7"
POSTGRES_IMAGE = "postgres:16"
RABBITMQ_IMAGE = "rabbitmq:3.13"
REPLICA_SET = "rs0"
READY_DEADLINE_S = 60.0


def mongo_replica_set(stops: Stops) -> Server:
    """A single-node replica set (transactions need one). No authentication: a replica
    set with users needs a key file, and the container lives only for this session.
    The URI connects directly (the member's own name, ``localhost``, means nothing to
    the host), which is how a driver reaches a one-node set's primary."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    container = (
        DockerContainer(MONGO_IMAGE)
        .with_command(f"--replSet {REPLICA_SET} --bind_ip_all")
        .with_exposed_ports(27017)
        .waiting_for(LogMessageWaitStrategy(re.compile("waiting for connections", re.IGNORECASE)))
    )
    container.start()
    stops.append(container.stop)
    members = f"{{_id: '{REPLICA_SET}', members: [{{_id: 0, host: 'localhost:27017'}}]}}"
    code, output = container.exec(["mongosh", "--quiet", "--eval", f"rs.initiate({members}).ok"])
    if code != 0:
        raise RuntimeError(f"rs.initiate failed: {output.decode(errors='replace')}")
    host, port = container.get_container_host_ip(), container.get_exposed_port(27017)
    uri = f"mongodb://{host}:{port}/?directConnection=true"
    _wait_for_primary(uri)
    return Server(f"{MONGO_IMAGE} container (replica set {REPLICA_SET})", uri)


def _wait_for_primary(uri: str) -> None:
    from pymongo import MongoClient

    client: MongoClient[dict[str, object]] = MongoClient(uri, serverSelectionTimeoutMS=2000)
    try:
        wait_for(
            lambda: client.admin.command("hello").get("isWritablePrimary"),
            READY_DEADLINE_S,
            "the replica set to elect its primary",
            interval=0.2,
        )
    finally:
        client.close()


def postgres(stops: Stops) -> Server:
    from testcontainers.community.postgres import PostgresContainer

    container = PostgresContainer(POSTGRES_IMAGE, username="postgres", password="postgres", dbname="test", driver=None)
    container.start()
    stops.append(container.stop)
    return Server(f"{POSTGRES_IMAGE} container", container.get_connection_url(driver=None))


def rabbitmq(stops: Stops) -> Server:
    from testcontainers.community.rabbitmq import RabbitMqContainer

    container = RabbitMqContainer(RABBITMQ_IMAGE, username="guest", password="guest")
    container.start()
    stops.append(container.stop)
    host, port = container.get_container_host_ip(), container.get_exposed_port(container.port)

    def rabbitmqctl(args: Sequence[str]) -> str:
        code, output = container.exec(["rabbitmqctl", "-q", *args])
        text = output.decode(errors="replace")
        if code != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed in the container: {text.strip()}")
        return text

    return Server(f"{RABBITMQ_IMAGE} container", f"amqp://guest:guest@{host}:{port}", rabbitmqctl)
