"""Read a Prometheus text exposition (``/metrics``) into samples a test can compare."""

from __future__ import annotations

import re

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample ``name`` with exactly these labels (0 if absent: a counter never incremented)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of every sample ``name`` whose labels include these."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def metrics_url(log: str) -> str | None:
    """Where a process started with ``--metrics-port 0`` serves its metrics."""
    found = re.search(r"metrics on http://[^:]+:(\d+)/metrics", log)
    return f"http://127.0.0.1:{found.group(1)}/metrics" if found else None
