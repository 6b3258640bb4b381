"""Prometheus: every metric of the platform (``metrics``) and how a process exposes them.

This package's ``__init__`` imports no prometheus-client: ``use_multiprocess_dir`` must
run before the library is first imported (it reads the directory at import).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def use_multiprocess_dir(directory: Path) -> None:
    """Make ``directory`` (emptied of a previous run's files) where this process and the
    children it starts write their metrics, for one ``/metrics`` that adds them up."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(directory)
