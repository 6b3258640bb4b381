"""Migrations of stored data between releases, as use cases.

Entities belong to accounts since the release that fixed shared CRM data between
tenants. A store written before it has entities without an account; ``migrate``
gives each one the account of the action that inserted it, which its id names
(``entity_id_for``: the action's high bits and the row). The rule lives here; each
store only rewrites its rows (``assign_owners``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from application.event_store import BulkActionLog
from domain.bulk_action import entity_id_prefix


class OwnerMigratable(Protocol):
    def needs_owner_migration(self) -> bool: ...

    def assign_owners(self, owner_of: Callable[[str, str | None], str]) -> int: ...


class UnknownOwnerError(Exception):
    """An entity whose inserting action is not in the event store: it cannot be given
    an account, so nothing is migrated."""


@dataclass(frozen=True, slots=True)
class OwnerMigration:
    entities: int
    # Entities that another account's action changed last: before this release one
    # account's UPDATE could reach another's entity. Listed so an operator can review them.
    changed_by_other_accounts: list[str]


def migrate_entity_owners(events: BulkActionLog, store: OwnerMigratable) -> OwnerMigration | None:
    """Assign every entity to the account that inserted it; None if nothing to do."""
    if not store.needs_owner_migration():
        return None
    account_of_action = events.accounts_of_actions()
    account_of_prefix = {entity_id_prefix(action_id): account for action_id, account in account_of_action.items()}
    crossed: list[str] = []

    def owner_of(entity_id: str, last_action: str | None) -> str:
        owner = account_of_prefix.get(UUID(entity_id).int >> 64)
        if owner is None:
            raise UnknownOwnerError(f"entity {entity_id} was inserted by an action the event store does not hold")
        writer = account_of_action.get(UUID(last_action)) if last_action else None
        if writer is not None and writer != owner:
            crossed.append(entity_id)
        return owner

    moved = store.assign_owners(owner_of)
    return OwnerMigration(moved, crossed)


class EntityOwnerMigration:
    """``bulkactions migrate``: the migration above, over the process's stores."""

    def __init__(self, events: BulkActionLog, store: OwnerMigratable) -> None:
        self.events = events
        self.store = store

    def run(self) -> OwnerMigration | None:
        return migrate_entity_owners(self.events, self.store)
