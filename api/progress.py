"""A live progress bar (processed, rate, ETA) on stderr, shown only on a terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from application.ports.read_models import ActionView


class ProgressDisplay:
    def __init__(self, *, enabled: bool) -> None:
        console = Console(stderr=True)
        self.enabled = enabled and console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} rec/s"),
            TextColumn("ok {task.fields[ok]} failed {task.fields[failed]} skipped {task.fields[skipped]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task: Any = None

    def __enter__(self) -> ProgressDisplay:
        if self.enabled:
            self.progress.start()
            self.task = self.progress.add_task("queueing", total=None, rate=0, ok=0, failed=0, skipped=0)
        return self

    def update(self, view: ActionView | None) -> None:
        if not self.enabled or view is None:
            return
        total = view.total if view.total is not None else view.expected_total
        speed = self.progress.tasks[0].speed or 0
        self.progress.update(
            self.task,
            description=view.status.lower(),
            total=total,
            completed=view.processed,
            rate=f"{speed:,.0f}",
            ok=view.succeeded,
            failed=view.failed,
            skipped=view.skipped,
        )

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.progress.stop()
