"""Product: the third entity type, added only through the extension point.

One class here and one line in ``domain/entities/registry.py``; nothing else in the
platform knows about products.
"""

from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer

from domain.entities.base import EntityType


def _normalised_sku(value: str) -> str:
    return value.upper()


Sku = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"), AfterValidator(_normalised_sku)]
# Prices are kept exact: stored as the decimal string, never as a float.
Price = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2), PlainSerializer(str)]


class ProductRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    sku: Sku
    name: str = Field(min_length=1, max_length=300)
    price: Price | None = None
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")


class Product(EntityType):
    name = "product"
    unique_field = "sku"
    model = ProductRecord
