"""The extension point for entity types: one ``EntityType`` subclass per entity.

An entity type knows how to validate a record (every error, not just the first),
normalise its unique field, and validate a partial record for updates. It does no
I/O: uniqueness against stored entities is checked by the application through the
entity store port.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from pydantic import BaseModel, ValidationError, create_model


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


@dataclass(slots=True)  # not frozen: one per input record, and a frozen __init__ costs several times as much
class ValidRecord:
    """A record that passed validation: normalised values and its unique key."""

    values: dict[str, Any]
    unique_key: str | None


def _missing_cells_removed(data: dict[str, Any]) -> dict[str, Any]:
    # An empty CSV cell means "no value": required fields then report `missing`,
    # and an update leaves that field unchanged.
    return {k: v for k, v in data.items() if v is not None and v != ""}


def _errors_of(exc: ValidationError) -> list[FieldError]:
    errors = []
    for err in exc.errors(include_url=False):
        field = ".".join(str(part) for part in err["loc"]) or "record"
        code = "unknown_field" if err["type"] == "extra_forbidden" else err["type"]
        message = "unknown field" if code == "unknown_field" else err["msg"]
        errors.append(FieldError(field=field, code=code, message=message))
    return errors


def _serialises_with_functions(schema: Any) -> bool:
    """Whether a pydantic core schema holds a custom serialisation anywhere (a field
    serialised by a function, like a product's price as its decimal text)."""
    if isinstance(schema, dict):
        return "serialization" in schema or any(_serialises_with_functions(v) for v in schema.values())
    if isinstance(schema, list):
        return any(_serialises_with_functions(v) for v in schema)
    return False


class EntityType:
    """Base of every entity type. Subclasses set ``name``, ``unique_field`` and ``model``."""

    name: ClassVar[str]
    unique_field: ClassVar[str]
    model: ClassVar[type[BaseModel]]
    # Optional fast path for ``normalise_unique`` (it runs once per input record while
    # queueing): the same function the model's validator uses, raising ValueError.
    unique_normaliser: ClassVar[Callable[[str], str] | None] = None
    # Fields whose value names another entity by its unique value: field -> entity type
    # (a contact's company_domain names a company). See domain.links.
    links: ClassVar[dict[str, str]] = {}
    _partial_model: ClassVar[type[BaseModel]]
    # A model whose values are stored as validated (no function serialises a field) is
    # read from its __dict__: ``model_dump`` took 1.4 us of each record's 7.
    _values_as_validated: ClassVar[bool]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Same fields and validators, every field optional: used to validate updates.
        # rebuild_annotation() keeps the validators and constraints held in metadata.
        fields: dict[str, Any] = {
            name: (Optional[info.rebuild_annotation()], None)  # noqa: UP045
            for name, info in cls.model.model_fields.items()
        }
        cls._partial_model = create_model(f"Partial{cls.model.__name__}", __base__=cls.model, **fields)
        cls._values_as_validated = not _serialises_with_functions(cls.model.__pydantic_core_schema__)

    @classmethod
    def field_names(cls) -> frozenset[str]:
        return frozenset(cls.model.model_fields)

    @classmethod
    def validate(cls, data: dict[str, Any]) -> ValidRecord | list[FieldError]:
        """Validate a whole record (insert, or the insert half of an upsert)."""
        try:
            model = cls.model.model_validate(_missing_cells_removed(data))
        except ValidationError as exc:
            return _errors_of(exc)
        if cls._values_as_validated:
            values = {name: value for name, value in model.__dict__.items() if value is not None}
        else:
            values = model.model_dump(exclude_none=True)
        return ValidRecord(values=values, unique_key=values.get(cls.unique_field))

    @classmethod
    def validate_partial(cls, data: dict[str, Any]) -> ValidRecord | list[FieldError]:
        """Validate only the fields present (update): absent fields stay as stored."""
        try:
            model = cls._partial_model.model_validate(_missing_cells_removed(data))
        except ValidationError as exc:
            return _errors_of(exc)
        values = model.model_dump(exclude_unset=True, exclude_none=True)
        return ValidRecord(values=values, unique_key=values.get(cls.unique_field))

    @classmethod
    def normalise_unique(cls, raw: Any) -> str | list[FieldError]:
        """Normalise a bare unique value (for UPDATE matched by the unique field)."""
        if cls.unique_normaliser is not None and isinstance(raw, str):
            try:
                return cls.unique_normaliser(raw.strip())
            except ValueError as exc:
                return [FieldError(cls.unique_field, "value_error", str(exc))]
        result = cls.validate_partial({cls.unique_field: raw})
        if isinstance(result, list):
            return result
        if result.unique_key is None:
            return [FieldError(cls.unique_field, "missing", "Field required")]
        return result.unique_key
