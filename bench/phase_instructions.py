"""Instruction counts of the import's three phases, for changes too small to see in
wall or CPU time on a shared machine: run under valgrind, a phase set at a time, and
subtract (the count is deterministic for a fixed PYTHONHASHSEED, whatever the load).

    FREEZE=1 PYTHONHASHSEED=0 valgrind --tool=cachegrind --cache-sim=no \
        --cachegrind-out-file=/dev/null .venv/bin/python bench/phase_instructions.py FILE store,process,project

Phases, in one thread of one process: ``store`` (the input stored as chunks),
``process`` (every chunk decided and its outcomes stored), ``project`` (the read
models caught up). FREEZE=1 freezes the heap after bootstrap as the CLI's processes do.
"""

import gc
import os
import sys
import tempfile
from pathlib import Path

from application.submission import SubmitCommand, checked_command
from infrastructure.bootstrap import bootstrap
from infrastructure.files.readers import FileSource
from infrastructure.settings import Settings

phases = sys.argv[2].split(",")
d = Path(tempfile.mkdtemp())
c = bootstrap(Settings(data_dir=d / "data"))
if os.environ.get("FREEZE"):
    gc.collect()
    gc.freeze()
src = FileSource(Path(sys.argv[1]))
aid, _ = c.services.submission.create(checked_command(SubmitCommand("acme", "contact", "insert")), src, src.scan())
if "store" in phases:
    c.services.submission.store_input(aid, src)
n = c.events.get_action(aid).chunk_count or 0
if "process" in phases:
    p = c.processor()
    for k in range(n):
        p.process(aid, k)
if "project" in phases:
    c.projector().catch_up()
