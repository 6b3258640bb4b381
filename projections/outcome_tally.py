"""What an applied batch adds to the record metrics, from what the projection computed.

Read from the batch's ``ViewChanges`` (its per-action counts and its failed log lines),
so counting costs no second pass over the events. Called only for a batch the read
model took: each outcome event is counted once however often it was delivered.
"""

from __future__ import annotations

from application.ports.metrics import OutcomeTally
from application.ports.read_models import ActionView, ViewChanges
from projections.actions import ActionOf

UNKNOWN = "unknown"  # an outcome whose action the read model does not know (never expected)


def tally(changes: ViewChanges, action_of: ActionOf) -> OutcomeTally:
    result = OutcomeTally()
    created = {view.action_id: view for view in changes.new_actions}

    def labels(action_id: str) -> tuple[str, str]:
        view: ActionView | None = created.get(action_id) or action_of(action_id)
        return (view.entity_type, view.action_type) if view is not None else (UNKNOWN, UNKNOWN)

    for action_id, delta in changes.deltas.items():
        entity, action = labels(action_id)
        for outcome in ("succeeded", "failed", "skipped"):
            count = getattr(delta, outcome)
            if count:
                result.records[(entity, action, outcome)] += count
    for line in changes.log_lines:
        if line.errors:
            entity = labels(line.action_id)[0]
            for error in line.errors:
                result.errors[(entity, error.get("code", UNKNOWN))] += 1
    return result
