"""What ``verify`` finds: each difference between what a store holds ("live") and what
the events give, and the true totals of the whole check.

A check calls ``VerificationReport.add`` once per difference, as it finds it: the
report hands the first ``limit`` on to be shown in full (streamed, so memory stays flat
whatever the number) and keeps only totals of all of them, per group (an action) and
per field. The read-model check adds its kinds here; a check of the entity store adds
its own kinds (and a ``checked`` counter) the same way, into the same report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Where = tuple[tuple[str, str | int], ...]

# One sentence per kind of difference, for the readable report.
SENTENCES = {
    "projector_behind": (
        "the live read models are at event {live}, the event store at {events}: the projector is behind "
        "(is an import still running, or was one killed? resume it)"
    ),
    "action_missing": "action {action_id}: in the events but not in the live read model",
    "action_extra": "action {action_id}: in the live read model but not in the events",
    "action_field": "action {action_id}: {field} is {live!r} live but {events!r} in the events",
    "log_line": "action {action_id}: row {row}: {field} is {live!r} live but {events!r} in the events",
    "log_line_missing": "action {action_id}: row {row}: the events give a {events[outcome]} line, the live log none",
    "log_line_extra": "action {action_id}: row {row}: the live log has a {live[outcome]} line the events do not give",
    "outcome_lines": "action {action_id}: the live log has {live} {field} lines, the events give {events}",
    "completed_short": "action {action_id}: completed with {events[processed]} outcomes for {events[total]} records",
    "completion_discrepancy": "action {action_id}: completion recorded a discrepancy: {events}",
    "history_entry": "the audit trail's index at event {position}: {field} is {live!r} live but {events!r}"
    " in the events",
    "history_entry_missing": "the audit trail's index lacks the change of {entity_id} at event {position}",
    "history_entry_extra": "the audit trail's index has a change of {entity_id} at event {position} the events"
    " do not give",
    "entity_missing": "{entity_type} {entity_id}: the events say it holds {events!r}, the entity store has no such"
    " entity",
    "entity_extra": "{entity_type} {key} ({entity_id}): the entity store holds {live!r}, the events say no such entity",
    "entity_owner": "{entity_type} {key} ({entity_id}): stored under {live[account_id]!r}, the events say"
    " {events[account_id]!r}",
    "entity_field": "{entity_type} {key} ({entity_id}): {field} is {live!r} in the entity store but {events!r}"
    " in the events",
}


@dataclass(frozen=True, slots=True)
class Difference:
    """One thing that differs. ``where`` names what it is about, the group first
    (("action_id", id), then ("row", n) for a record of it); ``live`` is what the store
    holds now and ``events`` what the events give (None where there is nothing)."""

    kind: str
    where: Where
    field: str | None = None
    live: Any = None
    events: Any = None

    @property
    def group(self) -> tuple[str, str | int] | None:
        return self.where[0] if self.where else None

    @property
    def record(self) -> Where:
        """The record (row) of the group it is about; empty for the group itself."""
        return self.where[1:]

    @property
    def tally_key(self) -> str:
        return f"{self.kind}.{self.field}" if self.field else self.kind

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, **dict(self.where), "field": self.field, "live": self.live, "events": self.events}

    def describe(self) -> str:
        return SENTENCES[self.kind].format(**dict(self.where), field=self.field, live=self.live, events=self.events)


@dataclass(slots=True)
class GroupTally:
    differences: int = 0
    rows: int = 0  # distinct records that differ (their differences arrive together)
    by_field: Counter[str] = field(default_factory=Counter)
    _last_record: Where = ()

    def add(self, difference: Difference) -> None:
        self.differences += 1
        self.by_field[difference.tally_key] += 1
        if difference.record and difference.record != self._last_record:
            self.rows += 1
            self._last_record = difference.record


class VerificationReport:
    def __init__(self, on_listed: Callable[[Difference], None], limit: int | None = None) -> None:
        self.on_listed = on_listed
        self.limit = limit
        self.checked: Counter[str] = Counter()  # "actions", "lines": what was compared
        self.differences = 0
        self.listed = 0
        self.groups: dict[tuple[str, str | int], GroupTally] = {}

    def add(self, difference: Difference) -> None:
        self.differences += 1
        if self.limit is None or self.listed < self.limit:
            self.listed += 1
            self.on_listed(difference)
        group = difference.group
        if group is not None:
            self.groups.setdefault(group, GroupTally()).add(difference)

    def summary(self) -> dict[str, Any]:
        return {
            "kind": "summary",
            **{f"{name}_checked": count for name, count in self.checked.items()},
            "differences": self.differences,
            "listed": self.listed,
            "groups": [
                {name: value, "differences": t.differences, "rows": t.rows, "by_field": dict(t.by_field)}
                for (name, value), t in self.groups.items()
            ],
        }

    def text_summary(self) -> list[str]:
        """The readable totals that follow the listed differences."""
        checked = ", ".join(
            f"{name.removesuffix('_not_checkable')} not checkable (changes recorded before they were kept): {count}"
            if name.endswith("_not_checkable")
            else f"{name} checked: {count}"
            for name, count in self.checked.items()
        )
        if not self.differences:
            return [f"verify: read models match the events ({checked})"]
        lines = []
        if self.listed < self.differences:
            lines.append(f"... {self.differences - self.listed} more difference(s) not listed (see --limit)")
        lines.append(f"verify: {self.differences} difference(s) ({checked})")
        for (name, value), tally in self.groups.items():
            fields = ", ".join(f"{key}: {count}" for key, count in tally.by_field.items())
            label = f"{name.removesuffix('_id')} {value}"
            lines.append(f"{label}: {tally.differences} difference(s) in {tally.rows} row(s); {fields}")
        return lines
