"""Which server each store's tests run against: chosen once per test session.

Each store lists its candidates in order of preference; the first that can be had is
started (if it needs starting) and used for the whole session:

| store | 1 (override) | 2 | 3 |
|---|---|---|---|
| MongoDB | ``BULK_MONGODB_URI`` | a ``mongo:7`` container, single-node replica set | ``nx-27017`` |
| PostgreSQL | ``BULK_TEST_POSTGRES`` | the local server, 127.0.0.1:5432 | a ``postgres:16`` container |
| RabbitMQ | ``BULK_TEST_RABBITMQ`` | the local server, 127.0.0.1:5672 | a ``rabbitmq:3.13`` container |

A container is a candidate only when a Docker engine answers. An override that does
not answer fails the tests (it was asked for by name): it is never passed over. If
nothing can be had, the tests that need the store fail with every reason
(``require_server``). The session's summary says, once, which server each store ran
against and why the candidates before it were passed over (``summary_lines``).
"""

from __future__ import annotations

import atexit
import functools
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

Stops = list[Callable[[], None]]


@dataclass(frozen=True)
class Server:
    """A server the tests can use."""

    label: str  # what it is, for the summary
    uri: str
    # Runs an administration command (rabbitmqctl's arguments) and returns its stdout.
    control: Callable[[Sequence[str]], str] | None = None


@dataclass(frozen=True)
class Candidate:
    label: str
    unusable: Callable[[], str | None]  # why it cannot be had here, or None
    start: Callable[[Stops], Server]  # starts or reaches it; appends what stops it
    binding: bool = False  # asked for by name: if it fails, fail, never pass it over


@dataclass(frozen=True)
class Choice:
    server: Server | None
    passed_over: tuple[str, ...]  # "<candidate>: <why not>", in order
    failure: str | None = None  # why no server, when ``server`` is None


def choose(candidates: Sequence[Candidate], stops: Stops) -> Choice:
    """The first candidate that can be had, started; and why the others before it were not."""
    passed: list[str] = []
    for candidate in candidates:
        why = candidate.unusable()
        if why is not None:
            passed.append(f"{candidate.label}: {why}")
            continue
        try:
            return Choice(candidate.start(stops), tuple(passed))
        except Exception as exc:
            passed.append(f"{candidate.label}: did not start ({type(exc).__name__}: {exc})")
            if candidate.binding:
                return Choice(None, tuple(passed), passed[-1])
    return Choice(None, tuple(passed), "; ".join(passed) or "no candidates")


class ServerUnavailableError(Exception):
    pass


@dataclass
class Store:
    """One store's server for this session, chosen on first use."""

    name: str
    candidates: Callable[[], Sequence[Candidate]]
    choice: Choice | None = None
    stops: Stops = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self) -> Server:
        with self.lock:
            if self.choice is None:
                self.choice = choose(self.candidates(), self.stops)
            if self.choice.server is None:
                raise ServerUnavailableError(self.choice.failure)
            return self.choice.server

    def error(self) -> str | None:
        """None if the store has a server, else why not."""
        try:
            self.get()
        except ServerUnavailableError as exc:
            return str(exc)
        return None

    def stop(self) -> None:
        with self.lock:
            while self.stops:
                self.stops.pop()()

    def summary(self) -> str:
        choice = self.choice
        if choice is None:
            return f"{self.name}: not used in this run"
        ran = f"{choice.server.label} at {choice.server.uri}" if choice.server else f"NONE ({choice.failure})"
        passed = f" (passed over: {'; '.join(choice.passed_over)})" if choice.passed_over else ""
        return f"{self.name}: {ran}{passed}"


STORES: dict[str, Store] = {}


def store(name: str, candidates: Callable[[], Sequence[Candidate]]) -> Store:
    STORES[name] = Store(name, candidates)
    return STORES[name]


def stop_all() -> None:
    for each in STORES.values():
        each.stop()


atexit.register(stop_all)  # backstop if the pytest hook (tests/conftest.py) never ran


KNOWN = ("MongoDB", "PostgreSQL", "RabbitMQ")


def used() -> dict[str, str]:
    """The summary of each store this process chose a server for. A pytest-xdist worker
    hands it to the controller (tests/conftest.py), which runs no test and chooses none."""
    return {name: each.summary() for name, each in STORES.items() if each.choice is not None}


def summary_lines(workers: Mapping[str, Mapping[str, str]] | None = None) -> list[str]:
    """One line per store: the server its tests ran against, or that none did. With
    pytest-xdist, each worker (by id) chose its own: one line where they all chose the
    same, else one per server with the workers that ran against it (each worker starts
    its own nx-27017, on a port of its own)."""
    runs = {"": used(), **dict(sorted((workers or {}).items()))}
    names = [*KNOWN, *STORES, *(name for run in runs.values() for name in run)]
    lines: list[str] = []
    for name in dict.fromkeys(names):
        by_summary: dict[str, list[str]] = {}
        for who, run in runs.items():
            if name in run:
                by_summary.setdefault(run[name], []).append(who)
        if not by_summary:
            lines.append(f"{name}: not used in this run")
        elif len(by_summary) == 1:
            lines.append(next(iter(by_summary)))
        else:
            lines.extend(f"{summary} [{', '.join(sorted(who))}]" for summary, who in by_summary.items())
    return lines


def header_line() -> str:
    engine = docker_engine_error()
    return "containers: " + ("a Docker engine answers" if engine is None else f"none ({engine})")


@functools.cache
def docker_engine_error() -> str | None:
    """None if a Docker engine answers (the one testcontainers would use), else why not."""
    try:
        from testcontainers.core.docker_client import DockerClient
    except ImportError:
        return "testcontainers is not installed (pip install -e '.[dev]')"
    try:
        client = DockerClient(timeout=5)
        client.client.ping()
        client.client.close()
    except Exception as exc:
        return f"no Docker engine answers ({type(exc).__name__}: {exc})"
    return None


def unset(variable: str, value: str | None) -> Callable[[], str | None]:
    """An override's usability: it is a candidate only when its variable is set."""
    return lambda: None if value else "not set"
