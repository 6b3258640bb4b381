"""A dead-lettered chunk tried once more, alone, in a child process (``ChunkTrial``).

The broker dead-letters a chunk after a number of deliveries, but it also counts a
delivery that a dropped connection returned, so a dead letter is a suspicion, not a
verdict. The verdict comes from processing the chunk in a child process
(``bulkactions worker --try-chunk ACTION_ID:N``), where a chunk that crashes its
process takes only the child down:

- exit 0: processed (its records have their real outcomes, or already had them);
- exit 75 (``EX_TEMPFAIL``): an infrastructure fault stopped it; try again later;
- anything else (a crash, a signal, an error of the chunk's own, no end in time):
  the chunk is poison and its records are failed.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from typing import ClassVar, Literal
from uuid import UUID

from infrastructure.bootstrap import bootstrap, fault_policy
from infrastructure.settings import Settings

log = logging.getLogger(__name__)

Verdict = Literal["processed", "unavailable", "crashed"]
UNAVAILABLE_EXIT = os.EX_TEMPFAIL
# A chunk that has not ended in this time is treated as one that hangs its worker.
TRIAL_TIMEOUT_SECONDS = 600.0


class SubprocessChunkTrial:
    # How to start the CLI; the fault-injection harness of the tests starts its own.
    program: ClassVar[list[str]] = [sys.executable, "-m", "api.cli"]

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def try_alone(self, action_id: str, chunk_no: int) -> Verdict:
        command = [
            *self.program,
            "worker",
            "--data-dir",
            str(self.settings.data_dir),
            "--try-chunk",
            f"{action_id}:{chunk_no}",
        ]
        try:
            done = subprocess.run(command, timeout=TRIAL_TIMEOUT_SECONDS, check=False)
        except subprocess.TimeoutExpired:
            log.error("chunk %s of action %s did not end alone in %.0fs", chunk_no, action_id, TRIAL_TIMEOUT_SECONDS)
            return "crashed"
        if done.returncode == 0:
            return "processed"
        if done.returncode == UNAVAILABLE_EXIT:
            return "unavailable"
        log.error("chunk %s of action %s processed alone: exit status %s", chunk_no, action_id, done.returncode)
        return "crashed"


def run_trial(settings: Settings, chunk: str) -> int:
    """The child's side: process chunk ``ACTION_ID:N`` once; the exit status says how it went."""
    action, _, number = chunk.partition(":")
    try:
        container = bootstrap(settings)
    except Exception as exc:
        if not fault_policy(settings).is_infrastructure(exc):
            raise
        return UNAVAILABLE_EXIT
    try:
        container.processor().process(UUID(action), int(number))
    except Exception as exc:
        if container.faults.is_infrastructure(exc):
            return UNAVAILABLE_EXIT
        log.exception("chunk %s failed when processed alone", chunk)
        return 1
    finally:
        container.close()
    return 0
