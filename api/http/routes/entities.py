"""Entities: the audit trail of one entity (what changed, when, by whom), by its unique
value. Scoped to the caller's account: another account's entity is 404."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from api.http.deps import AccountDep, StateDep
from api.http.problems import PROBLEM_RESPONSES, FaultTranslatingRoute, not_found
from api.http.schemas import EntityHistory
from application.audit import EntityNotFoundError
from domain.entities.registry import ENTITY_TYPES

router = APIRouter(
    prefix="/v1/entities", tags=["entities"], responses=PROBLEM_RESPONSES, route_class=FaultTranslatingRoute
)


@router.get("/{entity}/{key}/history", response_model=EntityHistory)
def read_entity_history(
    entity: Annotated[str, Path(description=f"one of: {', '.join(sorted(ENTITY_TYPES))}")],
    key: Annotated[str, Path(max_length=320, description="its unique value: email, domain or sku")],
    account: AccountDep,
    state: StateDep,
) -> Any:
    """Every change of the entity, oldest first, with its current values (none if it
    was removed): each change names its action, row, operation, time, actor and fields."""
    if entity not in ENTITY_TYPES:
        raise not_found(f"entity type {entity!r}")
    try:
        return state.services.audits.of_key(account.account_id, entity, key).as_json()
    except EntityNotFoundError as exc:
        raise not_found(str(exc).removeprefix("no ")) from None
