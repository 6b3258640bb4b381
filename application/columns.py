"""Which column of an input becomes which field: the header matching a person expects.

- A column is matched to a field whatever its case, its surrounding spaces or a
  byte-order mark stuck to it, and whatever spaces, hyphens or underscores separate
  its words (`` E-Mail `` is ``email``, ``First Name`` and ``FirstName`` are
  ``first_name``). No two fields of an entity may differ only so (a unit test checks).
- ``column_mapping`` renames columns onto fields (``E-mail Address`` -> ``email``),
  matched the same way; each entry must name a field of the entity.
- ``ignore_columns`` drops the named columns; ``ignore_unknown_columns`` drops every
  column that names no field (and unnamed ones).
- Refused up front, naming the columns: two columns onto one field (ambiguous), a
  mapped or dropped column that the header does not have, a column that is no field
  and is not dropped, an unnamed column.

The readers apply one ``ColumnPlan`` per header (CSV, xlsx); JSON records have no
header, so their keys are renamed one record at a time (``ColumnRequest.record``),
and only when the submission asked for a mapping or for columns to be dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from application.ports.inputs import InputError, ReadOptions


def column_key(name: str) -> str:
    """A column's name as it is matched: no byte-order mark, any case, no spaces,
    hyphens or underscores."""
    return _SEPARATORS.sub("", name.replace("\ufeff", "").casefold())


_SEPARATORS = re.compile(r"[\s_-]+")


def _shown(name: str) -> str:
    return name.replace("\ufeff", "").strip()


@dataclass(frozen=True, slots=True)
class ColumnPlan:
    """What a header's columns become: ``fields[i]`` is column i's field (None: dropped);
    ``mapping`` says so by the columns' names, for the record of the action (None: every
    column is its field, named exactly so)."""

    fields: tuple[str | None, ...]
    mapping: dict[str, str | None] | None

    @property
    def renames_only(self) -> bool:
        """No column is dropped: a row is its fields zipped with its values."""
        return None not in self.fields


class ColumnRequest:
    """A submission's column options, checked against the entity's fields."""

    def __init__(self, options: ReadOptions, allowed_fields: frozenset[str] | None) -> None:
        self.allowed = {column_key(f): f for f in allowed_fields} if allowed_fields is not None else None
        self.ignore_unknown = options.ignore_unknown_columns
        self.mapping: dict[str, str] = {}
        self.named: dict[str, str] = {}  # key -> the column as the user named it
        onto: dict[str, str] = {}
        for column, target in options.column_mapping:
            key, field = column_key(column), self._field(column, target)
            if key in self.mapping:
                raise InputError(f"the column mapping names column {_shown(column)!r} twice")
            if field in onto:
                raise InputError(
                    f"ambiguous column mapping: columns {onto[field]!r} and {_shown(column)!r}"
                    f" are both mapped onto {field}; map one column onto each field"
                )
            self.mapping[key], self.named[key], onto[field] = field, _shown(column), _shown(column)
        self.ignored = {column_key(c): _shown(c) for c in options.ignore_columns}
        both = [self.ignored[k] for k in self.ignored if k in self.mapping]
        if both:
            raise InputError(f"column(s) {', '.join(map(repr, both))} are both mapped and ignored")
        self.active = bool(self.mapping or self.ignored or self.ignore_unknown)

    def _field(self, column: str, target: str) -> str:
        if self.allowed is None:
            return target.strip()
        field = self.allowed.get(column_key(target))
        if field is None:
            raise InputError(
                f"the column mapping maps {_shown(column)!r} onto {target.strip()!r}, which is not a field"
                f" (fields: {', '.join(sorted(self.allowed.values()))})"
            )
        return field

    def plan(self, header: list[str], name: str) -> ColumnPlan:
        """The plan of one header, or an ``InputError`` naming what is wrong with it."""
        if not header or all(column_key(c) == "" for c in header):
            raise InputError(f"{name} has no header row (the first line must name the columns)")
        keys = [column_key(c) for c in header]
        self._named_columns_exist(keys, header, name)
        fields = [self._field_of(key, _shown(column)) for key, column in zip(keys, header, strict=True)]
        unnamed = [i + 1 for i, key in enumerate(keys) if key == "" and fields[i] is not None]
        if unnamed:
            raise InputError(f"{name}: header column {unnamed[0]} has no name")
        _no_field_twice(header, fields, name)
        unknown = [_shown(c) for c, f in zip(header, fields, strict=True) if f is _UNKNOWN]
        if unknown and self.allowed is not None:
            raise InputError(
                f"{name}: unknown column(s) {', '.join(unknown)} (allowed: {', '.join(sorted(self.allowed.values()))};"
                " map a column onto a field, or drop it)"
            )
        return _plan(header, fields)

    def _named_columns_exist(self, keys: list[str], header: list[str], name: str) -> None:
        present = set(keys)
        missing = [self.named[k] for k in self.mapping if k not in present]
        missing += [self.ignored[k] for k in self.ignored if k not in present]
        if missing:
            columns = ", ".join(repr(_shown(c)) for c in header)
            raise InputError(f"{name} has no column(s) {', '.join(map(repr, missing))} (its columns: {columns})")

    def _field_of(self, key: str, shown: str) -> str | None:
        if key in self.ignored:
            return None
        if key in self.mapping:
            return self.mapping[key]
        if self.allowed is None:
            return shown or None if self.ignore_unknown else shown
        field = self.allowed.get(key)
        if field is not None:
            return field
        return None if self.ignore_unknown else _UNKNOWN

    def record(self, data: dict[str, Any]) -> dict[str, Any] | str:
        """A JSON record's keys renamed (``active`` requests only), or why it cannot be."""
        renamed: dict[str, Any] = {}
        source: dict[str, str] = {}
        for key, value in data.items():
            field = self._field_of(column_key(key), key)
            if field is None:
                continue
            field = key if field is _UNKNOWN else field
            if field in renamed:
                return f"keys {source[field]!r} and {key!r} both become field {field}"
            renamed[field], source[field] = value, key
        return renamed

    def stored_mapping(self) -> dict[str, str | None] | None:
        """For inputs without a header (JSON records): the mapping as requested."""
        if not self.active:
            return None
        return {self.named[k]: f for k, f in self.mapping.items()} | {c: None for c in self.ignored.values()}


_UNKNOWN = "\x00unknown"


def _no_field_twice(header: list[str], fields: list[str | None], name: str) -> None:
    columns: dict[str, list[str]] = {}
    for column, field in zip(header, fields, strict=True):
        if field is not None and field is not _UNKNOWN:
            columns.setdefault(field, []).append(_shown(column))
    repeated = {field: names for field, names in columns.items() if len(names) > 1}
    if not repeated:
        return
    if all(len({column_key(n) for n in names}) == 1 for names in repeated.values()):
        raise InputError(f"{name}: header repeats column(s) {', '.join(sorted(repeated))}")
    field, names = next(iter(repeated.items()))
    raise InputError(
        f"{name}: columns {' and '.join(map(repr, names))} both become field {field}"
        " (ambiguous); map or drop one of them"
    )


def _plan(header: list[str], fields: list[str | None]) -> ColumnPlan:
    as_written = [_shown(c) for c in header]
    identity = all(f == c for f, c in zip(fields, as_written, strict=True))
    mapping = None if identity else dict(zip(as_written, fields, strict=True))
    return ColumnPlan(tuple(fields), mapping)
