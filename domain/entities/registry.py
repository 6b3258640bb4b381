"""The one place where entity types are registered."""

from domain.entities.base import EntityType
from domain.entities.company import Company
from domain.entities.contact import Contact
from domain.entities.product import Product
from domain.errors import UnknownEntityTypeError

ENTITY_TYPES: dict[str, type[EntityType]] = {cls.name: cls for cls in (Contact, Company, Product)}


def entity_type(name: str) -> type[EntityType]:
    try:
        return ENTITY_TYPES[name]
    except KeyError:
        known = ", ".join(sorted(ENTITY_TYPES))
        raise UnknownEntityTypeError(f"unknown entity type {name!r} (known: {known})") from None
