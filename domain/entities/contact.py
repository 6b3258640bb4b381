"""Contact: email required and unique, compared case-insensitively."""

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from domain.entities.base import EntityType

# Deliberately a syntax check, not deliverability: one @, a dotted domain, no spaces.
_EMAIL = re.compile(
    r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$"
)


def _normalised_email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("not a valid email address")
    return value.lower()


Email = Annotated[str, Field(max_length=254), AfterValidator(_normalised_email)]


class ContactRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: Email
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40, pattern=r"^\+?[0-9 ()./-]{3,40}$")
    company_domain: str | None = Field(default=None, max_length=253)


class Contact(EntityType):
    name = "contact"
    unique_field = "email"
    model = ContactRecord
    unique_normaliser = _normalised_email
    links = {"company_domain": "company"}
