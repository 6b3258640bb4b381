"""Request and response bodies of the HTTP API (pydantic v2), with OpenAPI examples."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from application.ports.inputs import ReadOptions
from application.submission import DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE
from domain.entities.registry import ENTITY_TYPES

_ENTITIES = ", ".join(sorted(ENTITY_TYPES))


class SubmitOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    match_by: str | None = Field(None, description="UPDATE: 'id' or the entity's unique field (default)")
    chunk_size: int = Field(DEFAULT_CHUNK_SIZE, ge=1, le=MAX_CHUNK_SIZE, description="records per chunk")
    dry_run: bool = Field(False, description="validate and decide every record, change nothing")
    link_companies: bool = Field(
        False,
        description="contacts: create the company of each company_domain the account has none of"
        " (contacts are linked to the account's existing companies either way)",
    )
    column_mapping: dict[str, str] | None = Field(
        None,
        description='column (or record key) -> field, e.g. {"E-mail Address": "email"};'
        " case and surrounding spaces do not matter",
    )
    ignore_columns: list[str] = Field(default_factory=list, description="columns (record keys) to drop")
    ignore_unknown_columns: bool = Field(False, description="drop every column that names no field")

    def read_options(self) -> ReadOptions:
        mapping = tuple((self.column_mapping or {}).items())
        return ReadOptions(mapping, tuple(self.ignore_columns), self.ignore_unknown_columns)


class BulkActionFields(BaseModel):
    """The members of a JSON submission other than its records (which are streamed to
    disk one at a time, never validated as one list in memory)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    entity: str = Field(description=f"entity type: {_ENTITIES}", max_length=64)
    action: str = Field(description="insert, update, upsert or delete", max_length=16)
    options: SubmitOptions = Field(default_factory=SubmitOptions)
    callback_url: str | None = Field(
        None,
        max_length=2000,
        description="POSTed the final status and counts (signed) when the action completes or is cancelled",
    )


class BulkActionCreate(BaseModel):
    """A bulk action with its records inline (for files, send multipart/form-data)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "entity": "contact",
                    "action": "insert",
                    "records": [{"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"}],
                    "options": {"chunk_size": 1000},
                }
            ]
        },
    )
    entity: str = Field(description=f"entity type: {_ENTITIES}", max_length=64)
    action: str = Field(description="insert, update, upsert or delete", max_length=16)
    records: list[dict[str, Any]] = Field(min_length=1, description="the records, one object each")
    options: SubmitOptions = Field(default_factory=SubmitOptions)
    callback_url: str | None = Field(
        None,
        max_length=2000,
        description="POSTed the final status and counts (signed) when the action completes or is cancelled",
    )


class Links(BaseModel):
    self: str
    logs: str
    events: str


class ActionAccepted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0f8b1c9e-2f4b-4d5e-9a57-3c1d2e4f5a6b",
                    "status": "QUEUEING",
                    "created": True,
                    "links": {
                        "self": "/v1/bulk-actions/0f8b1c9e-2f4b-4d5e-9a57-3c1d2e4f5a6b",
                        "logs": "/v1/bulk-actions/0f8b1c9e-2f4b-4d5e-9a57-3c1d2e4f5a6b/logs",
                        "events": "/v1/bulk-actions/0f8b1c9e-2f4b-4d5e-9a57-3c1d2e4f5a6b/events",
                    },
                }
            ]
        }
    )
    id: str
    status: str
    created: bool = Field(description="false when an earlier request with the same Idempotency-Key made it")
    links: Links


class Counts(BaseModel):
    total: int | None = Field(description="records in the input (known once scanned)")
    processed: int
    succeeded: int
    failed: int
    skipped: int


class Progress(BaseModel):
    percent: float | None
    records_per_second: float | None
    eta_seconds: float | None


class Timings(BaseModel):
    created_at: str
    first_outcome_at: str | None
    last_outcome_at: str | None
    finished_at: str | None
    elapsed_seconds: float | None = Field(description="first to last outcome so far")


class ActionPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0f8b1c9e-2f4b-4d5e-9a57-3c1d2e4f5a6b",
                    "status": "PROCESSING",
                    "entity": "contact",
                    "action": "insert",
                    "match_by": None,
                    "source": "contacts.csv",
                    "counts": {
                        "total": 1000000,
                        "processed": 250000,
                        "succeeded": 240000,
                        "failed": 7500,
                        "skipped": 2500,
                    },
                    "progress": {
                        "percent": 25.0,
                        "records_per_second": 21000.0,
                        "eta_seconds": 35.7,
                    },
                    "timings": {
                        "created_at": "2026-11-29T01:00:00+00:00",
                        "first_outcome_at": "2026-11-29T01:00:03+00:00",
                        "last_outcome_at": "2026-11-29T01:00:15+00:00",
                        "finished_at": None,
                        "elapsed_seconds": 12.0,
                    },
                    "discrepancy": None,
                    "links": {
                        "self": "/v1/bulk-actions/0f8b1c9e-2f4b-4d5e-9a57-3c1d2e4f5a6b",
                        "logs": "/v1/bulk-actions/0f8b1c9e-2f4b-4d5e-9a57-3c1d2e4f5a6b/logs",
                        "events": "/v1/bulk-actions/0f8b1c9e-2f4b-4d5e-9a57-3c1d2e4f5a6b/events",
                    },
                }
            ]
        }
    )
    id: str
    status: str = Field(description="QUEUEING, PROCESSING, COMPLETED or CANCELLED")
    entity: str
    action: str
    match_by: str | None
    source: str | None
    counts: Counts
    progress: Progress
    timings: Timings
    discrepancy: str | None
    actor: dict[str, Any] | None = Field(
        default=None, description="who submitted it: the account and its API key's id (not the key), or the CLI user"
    )
    reverts: str | None = Field(default=None, description="the action this one reverts")
    reverted_by: str | None = Field(default=None, description="the action that reverts this one")
    retry_of: str | None = Field(default=None, description="the action whose failed rows this one submits again")
    retried_by: RetryLink | None = Field(
        default=None,
        description="the action that submits this one's failed rows again, with its counts and its own retry"
        " (in a list: its id only)",
    )
    dry_run: bool = Field(default=False, description="decided every record and changed nothing")
    links: Links


class RetryLink(BaseModel):
    """The retry of an action, with its status and counts, and its own retry (the chain)."""

    action_id: str
    status: str | None = None
    total: int | None = None
    succeeded: int | None = None
    failed: int | None = None
    skipped: int | None = None
    retried_by: RetryLink | None = None


class FieldChange(BaseModel):
    before: Any
    after: Any


class EntityChangePublic(BaseModel):
    action_id: str
    row: int
    line: int | None
    op: str = Field(description="created, updated, unchanged, reverted or deleted")
    at: str
    actor: dict[str, Any] | None
    version: int | None = Field(description="the entity's version after this change")
    fields: dict[str, FieldChange] | None = Field(description="what changed; null for changes recorded before 1.1")
    column_mapping: dict[str, str | None] | None = Field(
        None, description="how the action's input columns became fields (null: each column is its field)"
    )
    links: dict[str, dict[str, Any]] | None = Field(
        None,
        description="per link field (a contact's company_domain): the entity it named (entity, key, entity_id)"
        " and its status: linked, created or invalid (no link is recorded for a domain with no company;"
        " events of an earlier build may say not_found)",
    )


class EntityHistory(BaseModel):
    entity_id: str
    entity: str
    key: str | None
    current: dict[str, Any] | None = Field(description="its values now; null once it was removed")
    changes: list[EntityChangePublic]


class ActionPage(BaseModel):
    items: list[ActionPublic]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next (older) page")


class LogEntry(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "row": 7,
                    "line": 8,
                    "outcome": "failed",
                    "errors": [{"field": "email", "code": "value_error", "message": "not an email address"}],
                }
            ]
        }
    )
    row: int
    line: int | None
    outcome: str
    entity_id: str | None = None
    op: str | None = None
    errors: list[dict[str, str]] | None = None
    reason: str | None = None
    duplicate_of: str | None = None
    duplicate_of_row: int | None = None
    links: dict[str, dict[str, Any]] | None = Field(
        None, description="succeeded contacts: the company their company_domain named (see Contacts and companies)"
    )


class LogPage(BaseModel):
    items: list[LogEntry]
    next_cursor: str | None


class RecordHistory(BaseModel):
    action_id: str
    row: int
    column_mapping: dict[str, str | None] | None = Field(
        None, description="how the input's columns became fields (null: each column is its field; null value: dropped)"
    )
    events: list[dict[str, Any]] = Field(description="the record's input event, then its outcome, in order")


# The body of POST /v1/bulk-actions, read by hand (streamed, size-capped), as the
# OpenAPI schema shows it: JSON records inline, or a file upload.
UPLOAD_SCHEMA = {
    "type": "object",
    "required": ["entity", "action", "file"],
    "properties": {
        "entity": {"type": "string", "example": "contact"},
        "action": {"type": "string", "enum": ["insert", "update", "upsert", "delete"]},
        "match_by": {"type": "string"},
        "chunk_size": {"type": "integer", "minimum": 1, "maximum": MAX_CHUNK_SIZE},
        "format": {"type": "string", "enum": ["csv", "jsonl", "json", "xlsx"]},
        "callback_url": {"type": "string", "format": "uri", "description": "see BulkActionCreate.callback_url"},
        "column_mapping": {
            "type": "string",
            "description": 'a JSON object of column names to fields: {"E-mail Address": "email"}',
        },
        "ignore_columns": {"type": "string", "description": 'a JSON array of column names to drop: ["Notes"]'},
        "ignore_unknown_columns": {"type": "string", "enum": ["true", "false"]},
        "link_companies": {"type": "string", "enum": ["true", "false"], "description": "see SubmitOptions"},
        "delimiter": {"type": "string", "description": "CSV: one of , ; | or tab (default: detected)"},
        "encoding": {"type": "string", "description": "e.g. cp1252, latin-1 (default: UTF-8, UTF-16 by its BOM)"},
        "sheet": {"type": "string", "description": "xlsx: the sheet to read (default: the first)"},
        "file": {
            "type": "string",
            "format": "binary",
            "description": "CSV with a header, JSON lines, a JSON array or an Excel .xlsx",
        },
    },
}
SUBMIT_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/BulkActionCreate"}},
            "multipart/form-data": {"schema": UPLOAD_SCHEMA},
        },
    },
}
