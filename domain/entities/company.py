"""Company: domain required and unique after normalisation (case, scheme, www., path)."""

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from domain.entities.base import EntityType

_HOSTNAME = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def normalised_domain(value: str) -> str:
    """`HTTPS://www.Acme.com/about` and `acme.com` are the same company."""
    domain = value.strip().lower()
    domain = re.sub(r"^[a-z][a-z0-9+.-]*://", "", domain)
    domain = domain.split("/", 1)[0].split("?", 1)[0].split(":", 1)[0].rstrip(".")
    domain = domain.removeprefix("www.")
    if not _HOSTNAME.match(domain):
        raise ValueError("not a valid domain name")
    return domain


Domain = Annotated[str, AfterValidator(normalised_domain)]


class CompanyRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    domain: Domain
    name: str | None = Field(default=None, max_length=300)
    industry: str | None = Field(default=None, max_length=100)
    employee_count: int | None = Field(default=None, ge=0, le=10_000_000)


class Company(EntityType):
    name = "company"
    unique_field = "domain"
    model = CompanyRecord
    unique_normaliser = normalised_domain
