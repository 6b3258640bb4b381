"""Schemathesis against the OpenAPI schema (in-process ASGI, real embedded adapters):
no 5xx and no response that breaks the schema, for generated valid and invalid input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from api.http.app import ApiConfig, create_app
from api.jobs import run_to_completion
from application.accounts import Account, AccountLimits
from application.submission import SubmitCommand, checked_input
from infrastructure.bootstrap import Container, bootstrap, input_files
from infrastructure.settings import Settings

pytestmark = pytest.mark.e2e


def _app_and_key(data_dir: Path) -> tuple[object, str, Container, Account]:
    container = bootstrap(Settings(data_dir=data_dir, max_upload_bytes=1_000_000))
    account, key = container.services.accounts.create("schemathesis", AccountLimits(10**9, 10**9, 10**6))
    return create_app(container.services, ApiConfig.of(container.settings), resume=False), key, container, account


# Derandomized: the same examples every run, so CI is stable; a change to the API or its
# schema changes the examples. Schemathesis's negative query values can serialise to a
# valid string (a one-element array), which it then reports as "accepted".
_APP, _KEY, _CONTAINER, _ACCOUNT = _app_and_key(Path(__import__("tempfile").mkdtemp(prefix="bulk-schemathesis-")))


@pytest.fixture(scope="module")
def finished_action() -> str:
    """A completed action of the test's account, with every outcome (ok, failed, skipped)."""
    records = [{"email": "a@example.com"}, {"email": "nope"}, {"email": "A@example.com"}, {"email": "=1+2"}]
    path = _CONTAINER.settings.data_dir / "finished-action.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    command = SubmitCommand(_ACCOUNT.account_id, "contact", "insert", chunk_size=2)
    checked = checked_input(input_files(), command, str(path), None)
    action_id, _ = _CONTAINER.services.submission.create(checked.command, checked.source, checked.scan)
    view = run_to_completion(_CONTAINER, action_id, checked.source, workers=1, on_progress=lambda _: None)
    assert view.status == "COMPLETED"
    return str(action_id)


schema = schemathesis.openapi.from_asgi("/openapi.json", _APP)


@schema.parametrize()
@settings(max_examples=50, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
def test_api_answers_every_generated_request_without_5xx_or_schema_violation(
    case: schemathesis.Case,
) -> None:
    # positive_data_acceptance is left out: a schema cannot say what a file's content
    # must be (a PNG in the `file` field is schema-valid and rightly refused).
    case.call_and_validate(headers={"Authorization": f"Bearer {_KEY}"}, excluded_checks=[positive_data_acceptance])


@schema.include(path_regex=r"\{action_id\}").parametrize()
@settings(max_examples=30, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
def test_api_answers_requests_about_an_existing_action_without_5xx_or_schema_violation(
    case: schemathesis.Case, finished_action: str
) -> None:
    case.path_parameters = {**(case.path_parameters or {}), "action_id": finished_action}
    case.call_and_validate(headers={"Authorization": f"Bearer {_KEY}"}, excluded_checks=[positive_data_acceptance])
