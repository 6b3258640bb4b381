"""Link a chunk's records to the entities their link fields name (domain.links).

Once per chunk and per linked entity type: one ``ids_of`` of the keys the chunk names,
and, when the action creates what is missing (``link_companies``), one ``insert_many``
of one entity per missing key. The entity store's unique (account, type, key) makes
that insert-or-get: when workers meet the same new key at once, one insert wins and the
others are answered with the winner, so a key gets exactly one entity. The id of an
entity a row creates is fixed by that row (``linked_entity_id``): a chunk run again
finds its own entity and says it created it again (its events collide with the first
run's, if they were stored), and a chunk that lost the race links to the winner.

Everything is scoped to the action's account: the store never answers with another
account's entity.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from uuid import UUID

from application.ports.entities import EntityStore, NewEntity
from domain.bulk_action import ActionType, CreatedEntity, Outcome, RecordResult, linked_entity_id
from domain.entities.base import EntityType
from domain.links import LinkRequest, LinkStatus, link_record, link_requests, new_linked_values

_Pending = list[tuple[RecordResult, LinkRequest]]


class EntityLinker:
    def __init__(self, entities: EntityStore, account_id: str, action_id: UUID, *, create: bool) -> None:
        self.entities = entities
        self.account_id = account_id
        self.action_id = action_id
        self.create = create

    def link(self, etype: type[EntityType], records: list[dict[str, Any]], results: list[RecordResult]) -> None:
        """Set ``links`` (and ``created``) on each succeeded result whose record sets a
        link field. ``results`` are in input order, one per record."""
        by_target: dict[str, _Pending] = defaultdict(list)
        data_of = {record["row"]: record.get("data") or {} for record in records}
        for result in results:
            if result.outcome is not Outcome.SUCCEEDED or result.op == "deleted":
                continue
            for request in link_requests(etype, data_of.get(result.row, {})):
                by_target[request.entity_type].append((result, request))
        for target, pending in by_target.items():
            self._link(target, pending)

    def _link(self, target: str, pending: _Pending) -> None:
        keys = sorted({request.key for _, request in pending if request.key is not None})
        held = self.entities.ids_of(self.account_id, target, keys)
        creators = self._create_missing(target, pending, held) if self.create else {}
        for result, request in pending:
            status = _status(request, held, creators.get(request.key or "") is result)
            if status is LinkStatus.NOT_FOUND:
                # Nothing is recorded for a value that names no entity: the outcome says
                # which entity a record is linked to, and an unlinked record holds its
                # value anyway. (Recorded, it cost ~90 bytes in the event and as many in
                # the log line of every contact whose company is not stored: most of an
                # import's contacts, about 20 MB per 100,000.)
                continue
            result.links = result.links or {}
            result.links[request.field] = link_record(request, held.get(request.key or ""), status)

    def _create_missing(self, target: str, pending: _Pending, held: dict[str, str]) -> dict[str, RecordResult]:
        """Create one entity per key nobody holds, by the first row that names it; fills
        ``held`` and returns the row that created each key's entity (found again when
        the chunk is decided again: the entity holds the id that row gives it)."""
        first: dict[str, RecordResult] = {}
        for result, request in pending:
            if request.key is not None:
                first.setdefault(request.key, result)
        creators: dict[str, RecordResult] = {}
        new = []
        for key, result in first.items():
            entity_id = str(linked_entity_id(self.action_id, result.row))
            if key in held and held[key] != entity_id:
                continue  # somebody else's (the common case: checked without building the entity)
            item = NewEntity(entity_id, key, new_linked_values(target, key), str(self.action_id), result.row)
            if key in held:
                self._created_by(result, target, item, creators, held)
            else:
                new.append(item)
        made = self.entities.insert_many(self.account_id, target, new) if new else []
        for item, outcome in zip(new, made, strict=True):
            if outcome.inserted or (outcome.existing is not None and outcome.existing.entity_id == item.entity_id):
                self._created_by(first[item.unique_key], target, item, creators, held)
            else:
                assert outcome.existing is not None
                held[item.unique_key] = outcome.existing.entity_id  # another worker's, made meanwhile
        return creators

    @staticmethod
    def _created_by(
        result: RecordResult, target: str, item: NewEntity, creators: dict[str, RecordResult], held: dict[str, str]
    ) -> None:
        result.created.append(CreatedEntity(target, item.entity_id, item.values))
        creators[item.unique_key] = result
        held[item.unique_key] = item.entity_id


def _status(request: LinkRequest, held: dict[str, str], created_here: bool) -> LinkStatus:
    if request.key is None:
        return LinkStatus.INVALID
    if created_here:
        return LinkStatus.CREATED
    return LinkStatus.LINKED if request.key in held else LinkStatus.NOT_FOUND


def links_apply(etype: type[EntityType], action_type: ActionType) -> bool:
    """Whether an action's records are linked: entities with link fields, written by
    the action (a delete names only its target)."""
    return bool(etype.links) and action_type is not ActionType.DELETE
