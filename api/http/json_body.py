"""A JSON submission's body, streamed: its small members kept, its ``records`` written
one per line to a JSON-lines spool file (the shape an uploaded JSON-lines file takes,
so both are stored the same way), never the whole array in memory."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from api.http.problems import ProblemError
from api.http.schemas import BulkActionFields
from api.http.spool import spool_path
from application.ports.inputs import InputError, InputScan
from infrastructure.files.json_stream import JsonTextStream, read_object_streaming
from infrastructure.files.repeated_keys import DUPLICATE_FIELD, repeated_key_message


@dataclass
class JsonBody:
    """A JSON body split in two: its small members, and its ``records`` written one per
    line to a JSON-lines spool file (``records_path``), the shape an uploaded JSON-lines
    file takes, so both are queued the same way."""

    members: dict[str, Any]
    records_path: Path
    records: int
    has_records_array: bool
    scan: InputScan  # of the JSON-lines file, counted and hashed as it was written
    errors: list[dict[str, str]] = field(default_factory=list)


_MAX_RECORD_ERRORS = 20


def split_json_body(raw_path: Path, spool_folder: Path) -> JsonBody:
    """Stream the spooled body: the record array never in memory, one record at a time.
    A record that is not an object, or that repeats a key, is an error of the request
    (records are objects by the schema); up to 20 are named, after a member (such as
    ``options``) that repeats a key. Malformed JSON, and any value the event store
    cannot hold (see ``infrastructure.files.storable``), is an ``InputError``."""
    records_path = spool_path(spool_folder, "jsonl")
    count = written = 0
    sha = hashlib.sha256()
    errors: list[dict[str, str]] = []

    try:
        with records_path.open("wb") as out, raw_path.open(encoding="utf-8-sig", errors="strict", newline="") as text:
            stream = JsonTextStream(text, "the body")

            def keep(record: Any) -> None:
                nonlocal count, written
                if type(record) is dict and stream.repeated_key is None:
                    line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
                    out.write(line)
                    sha.update(line)
                    written += 1
                elif len(errors) < _MAX_RECORD_ERRORS:
                    errors.append({"location": f"records.{count}", **_record_problem(record, stream.repeated_key)})
                count += 1

            body = read_object_streaming(stream, "records", keep)
            size = out.tell()
    except UnicodeDecodeError as exc:
        records_path.unlink(missing_ok=True)
        # exc.start counts from the decoder's current block, not the body: no offset
        raise InputError(f"the body is not valid UTF-8 (byte 0x{exc.object[exc.start]:02x})") from None
    except BaseException:
        records_path.unlink(missing_ok=True)
        raise
    scan = InputScan(total=written, sha256=sha.hexdigest(), size=size)
    repeats = [
        {"location": member, "message": repeated_key_message(key), "code": DUPLICATE_FIELD}
        for member, key in body.repeated_keys.items()
    ]
    return JsonBody(body.members, records_path, count, body.streamed, scan, repeats + errors)


def _record_problem(record: Any, repeated: str | None) -> dict[str, str]:
    if isinstance(record, dict) and repeated is not None:
        return {"message": repeated_key_message(repeated), "code": DUPLICATE_FIELD}
    return {"message": "Input should be a valid dictionary", "code": "dict_type"}


def checked_json_body(raw: Path, spool_folder: Path) -> tuple[BulkActionFields, Path, InputScan]:
    """The spooled JSON body checked as ``BulkActionCreate`` would check it, with its
    records streamed to a JSON-lines spool file. 400 for malformed JSON, 422 (naming
    every problem) for a body that does not fit the schema."""
    try:
        body = split_json_body(raw, spool_folder)
    except InputError as exc:
        raise ProblemError(400, "malformed-body", "Bad Request", f"malformed JSON: {exc}") from None
    errors = list(body.errors)
    if "records" in body.members:
        errors.insert(0, _problem("records", "Input should be a valid list", "list_type"))
    elif not body.has_records_array:
        errors.insert(0, _problem("records", "Field required", "missing"))
    elif body.records == 0:
        errors.insert(0, _problem("records", "List should have at least 1 item after validation, not 0", "too_short"))
    fields: BulkActionFields | None = None
    try:
        fields = BulkActionFields.model_validate({k: v for k, v in body.members.items() if k != "records"})
    except ValidationError as exc:
        errors[:0] = [
            _problem(".".join(map(str, e["loc"])) or "body", e["msg"], e["type"]) for e in exc.errors(include_url=False)
        ]
    if errors or fields is None:
        body.records_path.unlink(missing_ok=True)
        first = errors[0]
        raise ProblemError(
            422, "invalid-request", "Invalid Request", f"{first['location']}: {first['message']}", errors=errors
        )
    return fields, body.records_path, body.scan


def _problem(location: str, message: str, code: str) -> dict[str, str]:
    return {"location": location, "message": message, "code": code}
