"""Prometheus: every metric of the platform (``metrics``) and how a process exposes them.

This package's ``__init__`` imports no prometheus-client: ``use_multiprocess_dir`` must
run before the library is first imported (it reads the directory at import).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir(data_dir: Path, configured: Path | None) -> Path:
    """``BULK_METRICS_DIR`` if set, else one folder per data dir under the temp dir.

    Not inside the data dir: the library writes through ``mmap`` into sparse files, and
    on a full filesystem a write that touches a new page kills the process (SIGBUS), no
    exception to catch. With the files in the data dir, ``serve`` died (connection reset)
    in tests/e2e/test_http_faults.py's full-disk test, which the data dir alone must
    survive. A full temp filesystem would do the same: give the folder a filesystem
    with room (a tmpfs of a few MB is plenty) through ``BULK_METRICS_DIR``.

    The folder is named by an id kept in the data dir (``metrics-id``), not by its path:
    a data dir deleted and made again at the same path is new data, and must not carry
    on the counters of the old one. Raises ``OSError`` if the id cannot be written.
    """
    if configured is not None:
        return configured
    id_file = data_dir / "metrics-id"
    if not id_file.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        id_file.write_text(uuid.uuid4().hex)
    return Path(tempfile.gettempdir()) / f"bulkactions-metrics-{id_file.read_text().strip()}"


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
