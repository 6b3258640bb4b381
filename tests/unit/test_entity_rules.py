from __future__ import annotations

import pytest

from domain.entities.base import EntityType, ValidRecord
from domain.entities.registry import ENTITY_TYPES, entity_type
from domain.errors import UnknownEntityTypeError

pytestmark = pytest.mark.unit


def _errors(result: object) -> dict[str, str]:
    assert isinstance(result, list), result
    return {e.field: e.code for e in result}


def test_contact_email_is_normalised_to_lower_case_as_the_unique_key() -> None:
    result = entity_type("contact").validate({"email": "  Ann@Example.COM ", "first_name": "Ann"})
    assert isinstance(result, ValidRecord)
    assert result.unique_key == "ann@example.com"
    assert result.values == {"email": "ann@example.com", "first_name": "Ann"}


def test_an_invalid_contact_reports_every_error_at_once() -> None:
    errors = _errors(entity_type("contact").validate({"email": "nope", "phone": "call me", "shoe_size": "9"}))
    assert errors == {"email": "value_error", "phone": "string_pattern_mismatch", "shoe_size": "unknown_field"}


def test_an_empty_cell_counts_as_missing() -> None:
    assert _errors(entity_type("contact").validate({"email": "", "first_name": "x"})) == {"email": "missing"}


def test_company_domains_are_the_same_whatever_the_scheme_case_or_www() -> None:
    company = entity_type("company")
    keys = {company.validate({"domain": d}).unique_key for d in ("acme.com", "HTTPS://www.Acme.com/about", "acme.com.")}  # type: ignore[union-attr]
    assert keys == {"acme.com"}


def test_company_employee_count_must_be_a_non_negative_integer() -> None:
    company = entity_type("company")
    assert _errors(company.validate({"domain": "acme.com", "employee_count": "-1"})) == {
        "employee_count": "greater_than_equal"
    }
    assert company.validate({"domain": "acme.com", "employee_count": "12"}).values["employee_count"] == 12  # type: ignore[union-attr]


def test_partial_validation_checks_only_the_fields_given() -> None:
    contact = entity_type("contact")
    assert contact.validate_partial({"first_name": "Bo"}).values == {"first_name": "Bo"}  # type: ignore[union-attr]
    assert _errors(contact.validate_partial({"email": "bad"})) == {"email": "value_error"}


def test_the_third_entity_type_comes_only_from_the_registry() -> None:
    product = entity_type("product")
    result = product.validate({"sku": "ab-1", "name": "Widget", "price": "9.90"})
    assert isinstance(result, ValidRecord)
    assert (result.unique_key, result.values["price"]) == ("AB-1", "9.90")
    assert set(ENTITY_TYPES) == {"contact", "company", "product"}
    assert all(issubclass(cls, EntityType) for cls in ENTITY_TYPES.values())


def test_an_unknown_entity_type_names_the_known_ones() -> None:
    with pytest.raises(UnknownEntityTypeError, match="known: company, contact, product"):
        entity_type("lead")


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("contact", " Ann@Example.COM "),
        ("contact", "bad"),
        ("company", "HTTPS://www.Acme.com/x"),
        ("company", "x"),
        ("product", "ab-1"),
        ("product", "bad sku!"),
    ],
)
def test_the_fast_unique_key_agrees_with_full_validation(name: str, raw: str) -> None:
    etype = entity_type(name)
    fast = etype.normalise_unique(raw)
    full = etype.validate_partial({etype.unique_field: raw})
    if isinstance(full, list):
        assert isinstance(fast, list)
    else:
        assert fast == full.unique_key


@pytest.mark.parametrize(
    ("name", "record"),
    [
        ("contact", {"email": " A@X.com ", "first_name": "Ann", "last_name": None, "phone": "+1 555 0100"}),
        ("company", {"domain": "https://www.Acme.com/about", "name": "Acme", "employee_count": "12"}),
        ("company", {"domain": "acme.io", "employee_count": 0, "industry": None}),
        ("product", {"sku": "SKU-1", "name": "Mug", "price": "19.90", "currency": "EUR"}),
    ],
    ids=["contact", "company", "company-zero", "product-price"],
)
def test_validated_values_are_what_the_model_dumps(name: str, record: dict[str, object]) -> None:
    # Values are read from the model's __dict__ where no function serialises a field:
    # they must equal model_dump's, types included (a product's price stays its text).
    etype = entity_type(name)
    result = etype.validate(record)
    assert isinstance(result, ValidRecord)
    dumped = etype.model.model_validate({k: v for k, v in record.items() if v is not None}).model_dump(
        exclude_none=True
    )
    assert result.values == dumped
    assert [type(v) for v in result.values.values()] == [type(v) for v in dumped.values()]
