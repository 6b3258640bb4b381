"""Links between entities: a field whose value names another entity of the same
account by that entity's unique value (a contact's ``company_domain`` names the
company with that domain, compared as the company normalises it).

The rules, pure: which link fields a record sets (``link_requests``), what an entity
made only to be linked to holds (``new_linked_values``: its unique value alone), and
what a record's outcome says of each link (``link_record``). Which entity a key names
is the entity store's answer (application.links).
"""

from __future__ import annotations

import enum
from functools import lru_cache
from typing import Any, NamedTuple

from domain.entities.base import EntityType
from domain.entities.registry import entity_type as entity_type_named


class LinkStatus(enum.StrEnum):
    LINKED = "linked"  # to an entity that existed (or that another row made)
    CREATED = "created"  # this row created the entity it links to
    NOT_FOUND = "not_found"  # no such entity, and the action does not create them: not recorded
    INVALID = "invalid"  # the value is not a valid unique value of the linked type


class LinkRequest(NamedTuple):
    """One link field of one record: the entity type it names and the normalised key
    (None: the value cannot be a key of that type). A NamedTuple: one is made per
    contact, and a frozen dataclass's ``__init__`` costs four ``object.__setattr__``."""

    field: str
    entity_type: str
    value: str
    key: str | None


def link_requests(etype: type[EntityType], data: dict[str, Any]) -> list[LinkRequest]:
    """The link fields ``data`` sets (an empty cell sets none)."""
    found = []
    for field, target in etype.links.items():
        value = data.get(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        found.append(LinkRequest(field, target, str(value), _key(target, str(value))))
    return found


@lru_cache(maxsize=4096)
def _key(entity_type: str, value: str) -> str | None:
    """The key ``value`` names (None: it names none). Cached: a file names the same few
    companies over and over, and normalising a domain takes its regular expressions."""
    key = entity_type_named(entity_type).normalise_unique(value)
    return key if isinstance(key, str) else None


def new_linked_values(entity_type: str, key: str) -> dict[str, Any]:
    """What an entity created for a link holds: its unique value, nothing guessed."""
    target = entity_type_named(entity_type)
    valid = target.validate({target.unique_field: key})
    if isinstance(valid, list):  # a key that normalise_unique gave is always valid
        raise ValueError(f"{key!r} is not a valid {target.unique_field}: {valid[0].message}")
    return valid.values


def link_record(request: LinkRequest, entity_id: str | None, status: LinkStatus) -> dict[str, Any]:
    """What the outcome event says of one link."""
    return {
        "entity": request.entity_type,
        "key": request.key,
        "entity_id": entity_id,
        "status": status.value,
    }
