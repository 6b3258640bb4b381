"""A lean mapper for the event store, selected with the library's ``MAPPER_TOPIC``.

The library's default mapper walks every value through ``JSONTranscoder`` and wraps
UUIDs and datetimes in ``{"_type_", "_data_"}`` envelopes; measured here that path
caps appends at 20-28k events/s. Our events hold only JSON-native values plus UUIDs
and datetimes, which orjson writes natively; on the way back the field types are
read once per event class from its annotations.

A stored state is JSON, compressed as ``infrastructure.stored_json`` says: a chunk's
input with zstd, every smaller state (the outcome event of each record) as a zstd frame
with the event states' dictionary; states stored before (plain JSON, or whole zstd
frames naming the dictionary of the release before) are read as they were.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any, TypeVar
from uuid import UUID

import orjson
from eventsourcing.persistence import Mapper, MapperDeserialisationError, StoredEvent
from eventsourcing.utils import get_topic, resolve_topic

from domain.bulk_action import BulkChunk, own_entity_id
from infrastructure.stored_json import head_of, packed, unpacked


@cache
def _topic(cls: type) -> str:
    return get_topic(cls)


# The same few values recur across thousands of events: every outcome of an action
# carries its action id, every outcome of a chunk its stream id and one timestamp.
# Parsing them each time was a third of the projector's decoding (UUID() alone costs
# several microseconds), so parsed values are kept, a bounded number of them.
_PARSED_MAX = 4096
_Value = TypeVar("_Value")
_parsed_uuids: dict[str, UUID] = {}
_parsed_datetimes: dict[str, datetime] = {}


def _parsed(kept: dict[str, _Value], parse: Callable[[str], _Value], text: str) -> _Value:
    found = kept.get(text)
    if found is None:
        if len(kept) >= _PARSED_MAX:
            kept.clear()
        found = kept[text] = parse(text)
    return found


# A record's outcome names the entity it inserted, and that id is the action's entity-id
# head and the row (domain.bulk_action.own_entity_id): such an id is not stored but put
# back on decoding (~10 of ~130 bytes a stored outcome). An id made any other way (an
# update's target) is stored as it is.
_RECORD_SUCCEEDED = BulkChunk.RecordSucceeded


def _typed_fields(cls: type) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Names of the fields to turn back into UUID and datetime objects."""
    hints = typing.get_type_hints(cls)
    uuids, datetimes = [], []
    for name, hint in hints.items():
        if name == "originator_id":
            continue
        options = typing.get_args(hint) or (hint,)
        if UUID in options:
            uuids.append(name)
        elif datetime in options:
            datetimes.append(name)
    return tuple(uuids), tuple(datetimes)


@cache
def _decoding(topic: str) -> tuple[type, tuple[str, ...], tuple[str, ...], int]:
    """What decoding an event of ``topic`` needs: its class, the names of its UUID and
    datetime fields, its class version."""
    cls = typing.cast(type, resolve_topic(topic))
    uuids, datetimes = _typed_fields(cls)
    return cls, uuids, datetimes, getattr(cls, "class_version", 1)


# A leading top-level value of a stored state: a plain string (no escapes) or an integer.
_LEADING_VALUE = re.compile(rb'"([A-Za-z_][A-Za-z0-9_]*)":(?:"([^"\\]*)"|(-?[0-9]+))[,}]')
_PEEK_BYTES = 512


class FastMapper(Mapper[UUID]):
    def peek(self, stored_event: StoredEvent, names: tuple[str, ...]) -> dict[str, str | int] | None:
        """The named top-level values of the state when they lead it (before any nested
        value), read from its first few hundred bytes only; None when they do not (then
        decode the event). A chunk's ``ChunkQueued`` is about 160 KB of input once
        decompressed, and the relay only needs its action id and chunk number."""
        if self.cipher or self.compressor:
            return None
        head = head_of(stored_event.state, _PEEK_BYTES)
        if head[:1] != b"{":
            return None
        found: dict[str, str | int] = {}
        at = 1
        while len(found) < len(names):
            match = _LEADING_VALUE.match(head, at)
            if match is None:
                return None
            name = match.group(1).decode()
            if name in names:
                text = match.group(2)
                found[name] = text.decode() if text is not None else int(match.group(3))
            at = match.end()
            if head[at - 1 : at] == b"}":
                break
        return found if len(found) == len(names) else None

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        state = dict(domain_event.__dict__)
        if type(domain_event) is _RECORD_SUCCEEDED and state["entity_id"] == own_entity_id(
            state["action_id"], state["row"]
        ):
            del state["entity_id"]
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        stored = packed(orjson.dumps(state))
        if self.compressor:
            stored = self.compressor.compress(stored)
        if self.cipher:
            stored = self.cipher.encrypt(stored)
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=_topic(typing.cast(type, type(domain_event))),
            state=stored,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        cls, uuids, datetimes, class_version = _decoding(stored_event.topic)
        stored = stored_event.state
        try:
            if self.cipher:
                stored = self.cipher.decrypt(stored)
            if self.compressor:
                stored = self.compressor.decompress(stored)
            state: dict[str, Any] = orjson.loads(unpacked(stored))
        except Exception as exc:
            where = f"{stored_event.topic} v{stored_event.originator_version} of {stored_event.originator_id}"
            msg = f"cannot decode {where}: {exc}"
            raise MapperDeserialisationError(msg) from exc
        # The parsed values kept are looked up inline: one decode per projected record.
        for name in uuids:
            text = state.get(name)
            if text is not None:
                state[name] = _parsed_uuids.get(text) or _parsed(_parsed_uuids, UUID, text)
        for name in datetimes:
            text = state.get(name)
            if text is not None:
                state[name] = _parsed_datetimes.get(text) or _parsed(_parsed_datetimes, datetime.fromisoformat, text)
        originator_id = stored_event.originator_id
        if not isinstance(originator_id, UUID):
            originator_id = _parsed(_parsed_uuids, UUID, originator_id)
        state["originator_id"] = originator_id
        state["originator_version"] = stored_event.originator_version
        if cls is _RECORD_SUCCEEDED and "entity_id" not in state:
            state["entity_id"] = own_entity_id(state["action_id"], state["row"])
        from_version = state.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
            from_version += 1
        event: Any = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return event
