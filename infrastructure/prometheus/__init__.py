"""Prometheus: every metric of the platform (``metrics``) and how a process exposes them.

This package's ``__init__`` imports no prometheus-client: ``use_multiprocess_dir`` must
run before the library is first imported (it reads the directory at import).
"""

from __future__ import annotations

import os
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def use_multiprocess_dir(directory: Path) -> None:
    """Make ``directory`` where this process and the children it starts write their
    metrics, for one ``/metrics`` that adds them up.

    A previous run's files are kept, not emptied as the library suggests: the counters
    then go on across a restart instead of starting again at 0, and the projector of
    the next run counts only the events the last one had not applied, so an action
    that a restart interrupted and resumed is still counted exactly once. (A kill in
    the moment between a batch stored and its count written loses that batch's count:
    the one gap.) The files are small, one set per process that ran."""
    directory.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(directory)
