"""CPU seconds of each process of a command's tree, and of the root's threads: where an
import's CPU goes, process by process (the embedded import runs a worker and the relay
as threads of the CLI's process, and a worker, the projector and the input's storing as
child processes named `bulk-*`).

    .venv/bin/python bench/process_cpu.py .venv/bin/python -m api.cli --data-dir DIR \\
        import FILE --entity contact --action insert --json

Samples every 0.2 s (psutil) and keeps each thread's last CPU time, so a process's
last 0.2 s may be missed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter

import psutil


def _sample(root: psutil.Process, last: dict[tuple[int, str, int], float]) -> None:
    try:
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return  # the root is gone
    for process in tree:
        try:
            name = process.name()
            for thread in process.threads():
                last[(process.pid, name, thread.id)] = thread.user_time + thread.system_time
        except psutil.Error:
            continue  # gone meanwhile


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    started = time.monotonic()
    process = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
    root = psutil.Process(process.pid)
    last: dict[tuple[int, str, int], float] = {}
    while process.poll() is None:
        _sample(root, last)
        time.sleep(0.2)
    wall = time.monotonic() - started
    by_process: Counter[str] = Counter()
    for (pid, name, _), seconds in last.items():
        by_process[f"{name} [{pid}]"] += seconds
    print(f"exit {process.returncode}, wall {wall:.1f} s, CPU {sum(by_process.values()):.1f} s")
    for name, seconds in by_process.most_common():
        print(f"  {seconds:7.1f} s  {name}")
    threads = sorted(((task, s) for (pid, _, task), s in last.items() if pid == process.pid), key=lambda t: -t[1])
    for task, seconds in threads[:8]:
        print(f"  {seconds:7.1f} s  thread {task} of the root")


if __name__ == "__main__":
    main()
