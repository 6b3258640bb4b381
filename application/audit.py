"""The audit trail of one entity: what changed, when, by whom, with its current values.

The projector keeps an index (each entity's outcome events, by position) and the
unique values entities gave up; what each change was is read from the outcome event
itself, kept once in the event store. Scoped to one account: another account's
entity is not found, whoever asks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from application.event_store import BulkActionLog
from application.ports.entities import EntityStore
from application.ports.read_models import ActionView, ReadModelStore
from domain.entities.registry import entity_type as entity_type_named


class EntityNotFoundError(LookupError):
    """No entity of this account answers to the key or id."""


@dataclass(frozen=True, slots=True)
class EntityHistoryLine:
    """One change of one entity, as its outcome event recorded it."""

    entity_id: str
    account_id: str
    entity_type: str
    version: int | None  # the entity's version after it; None for events of v1
    position: int  # notification id of the outcome event
    action_id: str
    row: int
    line: int | None
    op: str
    at: str
    changes: dict[str, list[Any]] | None  # field -> [before, after]; None: not recorded (v1)
    links: dict[str, dict[str, Any]] | None = None  # what its link fields named (domain.links)


def history_lines(
    events: BulkActionLog, action_of: Callable[[str], ActionView | None], positions: list[int]
) -> list[EntityHistoryLine]:
    """The changes at ``positions``, oldest first by the entity's version (changes of
    v1 events, which have none, first, by position)."""
    lines = []
    for position, event in events.events_at(positions):
        action = action_of(str(event.action_id))
        if action is None:
            continue
        lines.append(
            EntityHistoryLine(
                event.entity_id,
                action.account_id,
                # A linked entity an action created is of its own type (a contact
                # import's company); an outcome's entity is of its action's type.
                getattr(event, "entity_type", action.entity_type),
                event.entity_version,
                position,
                str(event.action_id),
                event.row,
                event.line,
                event.op,
                event.timestamp.isoformat(),
                event.changes,
                getattr(event, "links", None),
            )
        )
    return sorted(lines, key=lambda h: (h.version is not None, h.version or 0, h.position))


@dataclass(frozen=True, slots=True)
class AuditedChange:
    action_id: str
    row: int
    line: int | None
    op: str
    at: str
    actor: dict[str, Any] | None
    version: int | None
    fields: dict[str, dict[str, Any]] | None  # name -> {"before", "after"}; None: not recorded (v1)
    column_mapping: dict[str, str | None] | None = None  # how its action's input columns became fields
    links: dict[str, dict[str, Any]] | None = None  # the entities its link fields named, e.g. the company


@dataclass(frozen=True, slots=True)
class EntityAudit:
    entity_id: str
    entity: str
    key: str | None  # its unique value now, or the last it held (an entity that is gone)
    current: dict[str, Any] | None  # None: the entity is gone (reverted or deleted)
    changes: list[AuditedChange]  # oldest first

    def as_json(self) -> dict[str, Any]:
        return {
            "entity_id": self.entity_id,
            "entity": self.entity,
            "key": self.key,
            "current": self.current,
            "changes": [
                {
                    "action_id": c.action_id,
                    "row": c.row,
                    "line": c.line,
                    "op": c.op,
                    "at": c.at,
                    "actor": c.actor,
                    "version": c.version,
                    "fields": c.fields,
                    "column_mapping": c.column_mapping,
                    "links": c.links,
                }
                for c in self.changes
            ],
        }


class EntityAudits:
    def __init__(self, events: BulkActionLog, read_models: ReadModelStore, entities: EntityStore) -> None:
        self.events = events
        self.read_models = read_models
        self.entities = entities

    def of_key(self, account_id: str, entity_type: str, key: str) -> EntityAudit:
        """The entity that holds ``key`` now, or else the last one that held it."""
        etype = entity_type_named(entity_type)
        normalised = etype.normalise_unique(key)
        if isinstance(normalised, list):
            raise EntityNotFoundError(f"{key!r} is not a valid {etype.unique_field}: {normalised[0].message}")
        holding_now = self.entities.id_of(account_id, etype.name, normalised)
        if holding_now is not None:
            return self.of_id(account_id, etype.name, holding_now)
        # Nobody holds it now (removed, or changed to another value): the last that did.
        holders = self.read_models.entities_holding(account_id, etype.name, normalised)
        if not holders:
            raise EntityNotFoundError(f"no {etype.name} with {etype.unique_field} {key!r}")
        return self.of_id(account_id, etype.name, holders[-1].entity_id)

    def of_id(self, account_id: str, entity_type: str, entity_id: str) -> EntityAudit:
        etype = entity_type_named(entity_type)
        positions = self.read_models.entity_positions(entity_id)
        lines = [h for h in history_lines(self.events, self._action, positions) if h.entity_type == etype.name]
        current = self.entities.get(account_id, etype.name, entity_id)
        # The account's own entity (the store is scoped), or one it inserted that is gone.
        # Its history is every change made to it, whoever made it.
        if current is None and (not lines or lines[0].account_id != account_id):
            raise EntityNotFoundError(f"no {etype.name} {entity_id}")
        actors: dict[str, tuple[dict[str, Any] | None, dict[str, str | None] | None]] = {}
        changes = [self._change(line, actors) for line in lines]
        key = (current or {}).get(etype.unique_field) or _last_key(lines, etype.unique_field)
        return EntityAudit(entity_id, etype.name, key, current, changes)

    def _action(self, action_id: str) -> ActionView | None:
        return self.read_models.get_action(action_id)

    def _change(
        self,
        line: EntityHistoryLine,
        actors: dict[str, tuple[dict[str, Any] | None, dict[str, str | None] | None]],
    ) -> AuditedChange:
        """One change, with who made it and how its input's columns became fields (read
        once per action: the actor from the read model, the mapping from ``Created``)."""
        if line.action_id not in actors:
            view = self.read_models.get_action(line.action_id)
            actor = view.actor if view is not None else None
            actors[line.action_id] = (actor, self.events.get_action(UUID(line.action_id)).column_mapping)
        actor, mapping = actors[line.action_id]
        fields = None
        if line.changes is not None:
            fields = {name: {"before": before, "after": after} for name, (before, after) in line.changes.items()}
        return AuditedChange(
            line.action_id, line.row, line.line, line.op, line.at, actor, line.version, fields, mapping, line.links
        )


def _last_key(lines: list[EntityHistoryLine], unique_field: str) -> str | None:
    for line in reversed(lines):
        change = (line.changes or {}).get(unique_field)
        if change is not None:
            return str(change[1] if change[1] is not None else change[0])
    return None
