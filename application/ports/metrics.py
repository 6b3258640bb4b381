"""Operational metrics: what the application tells a monitoring system as it works.

Why a port and not Prometheus calls in the use cases: the application must not depend
on a monitoring library (prometheus-client is in the ``api`` extra; the base install's
CLI runs without it), and where a count is taken is a rule of ours, not of the
library. Records are counted by the projector as it applies outcome events, never by
workers per attempt: the read model takes each event once (a batch at or below its
position is refused), and a redelivered or resumed chunk stores no second outcome, so
after an action completes its outcomes are counted exactly once. The adapter
(``infrastructure/prometheus/metrics.py``) holds every metric definition.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(slots=True)
class OutcomeTally:
    """What one applied batch of events adds: records by (entity, action, outcome) and
    record errors by (entity, code)."""

    records: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)


class Metrics(Protocol):
    def outcomes_projected(self, tally: OutcomeTally) -> None:
        """A projector applied these outcomes to the read models (once per event)."""
        ...

    def chunk_processed(self, entity: str, action: str, seconds: float) -> None:
        """A worker stored a chunk's outcomes after working on it for ``seconds``."""
        ...


class NoMetrics:
    """Nothing recorded: the CLI and every process that exposes no metrics."""

    def outcomes_projected(self, tally: OutcomeTally) -> None:
        pass

    def chunk_processed(self, entity: str, action: str, seconds: float) -> None:
        pass
