"""Reading a submission off the wire: the command it asks for, and its input spooled to
a file (the records of a JSON body, or an uploaded file), counted against the cap.

Every input is streamed into a spool file in the process's spool folder
(``api.http.spool``) while its bytes are counted (413 past the cap), so nothing is held
whole in memory and a restarted server can store it from the same file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from api.http.json_body import checked_json_body
from api.http.multipart import UploadSpooler, unsupported, upload_read_options
from api.http.problems import ProblemError
from api.http.schemas import SubmitOptions
from api.http.spool import spool_capped, spool_path
from application.accounts import Account
from application.ports.inputs import InputScan, ReadOptions
from application.submission import DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, SubmitCommand, checked_command


@dataclass(frozen=True, slots=True)
class SpooledSubmission:
    command: SubmitCommand
    path: Path  # the input, in the spool folder (the caller removes it once done with it)
    format: str
    name: str  # what the user sent, not the spool file's name
    scan: InputScan | None  # a JSON body is counted and hashed as it is written


async def spooled_submission(
    request: Request, account: Account, folder: Path, cap: int, idempotency_key: str | None
) -> SpooledSubmission:
    """The command and the spooled input of a JSON body or a multipart upload; a
    refusal (4xx) leaves no spool file behind."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json":
        return await _json_submission(request, account, folder, cap, idempotency_key)
    if media == "multipart/form-data":
        return await _upload_submission(request, account, folder, cap, idempotency_key)
    raise unsupported("send application/json (records inline) or multipart/form-data (a file)")


async def _json_submission(
    request: Request, account: Account, folder: Path, cap: int, key: str | None
) -> SpooledSubmission:
    raw = spool_path(folder, "json")
    await spool_capped(request.stream(), raw, cap)
    try:
        fields, path, scan = await run_in_threadpool(checked_json_body, raw, folder)
    finally:
        raw.unlink(missing_ok=True)
    try:
        command = _command(
            account,
            fields.entity,
            fields.action,
            fields.options,
            key,
            fields.callback_url,
            fields.options.read_options(),
        )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return SpooledSubmission(command, path, "jsonl", "request body", scan)


async def _upload_submission(
    request: Request, account: Account, folder: Path, cap: int, key: str | None
) -> SpooledSubmission:
    spooler = UploadSpooler(folder, request.headers["content-type"], cap)
    await spooler.consume(request.stream())
    try:
        command, fmt = _upload_command(account, spooler, key)
    except Exception:
        spooler.discard()
        raise
    assert spooler.path is not None
    return SpooledSubmission(command, spooler.path, fmt, spooler.filename or "upload", None)


def _command(
    account: Account,
    entity: str,
    action: str,
    options: SubmitOptions,
    key: str | None,
    callback_url: str | None,
    read: ReadOptions,
) -> SubmitCommand:
    command = SubmitCommand(
        account.account_id,
        entity,
        action,
        options.match_by,
        options.chunk_size,
        key,
        callback_url=callback_url,
        dry_run=options.dry_run,
        read=read,
        link_companies=options.link_companies,
    )
    return checked_command(command)


def _flag(fields: dict[str, str], name: str) -> bool:
    """A form field's yes or no (absent: no)."""
    value = fields.get(name)
    if value is None or value.lower() in ("", "false", "0", "no"):
        return False
    if value.lower() in ("true", "1", "yes"):
        return True
    raise ProblemError(422, "invalid-request", "Invalid Request", f"{name} must be true or false, not {value!r}")


def _upload_command(account: Account, spooler: UploadSpooler, key: str | None) -> tuple[SubmitCommand, str]:
    fields = spooler.fields
    missing = [name for name in ("entity", "action") if not fields.get(name)]
    if spooler.path is None:
        missing.append("file")
    if missing:
        raise ProblemError(422, "invalid-request", "Invalid Request", f"missing form field(s): {', '.join(missing)}")
    try:
        options = SubmitOptions(
            match_by=fields.get("match_by") or None,
            chunk_size=int(fields.get("chunk_size") or DEFAULT_CHUNK_SIZE),
            dry_run=_flag(fields, "dry_run"),
            link_companies=_flag(fields, "link_companies"),
        )
    except (ValueError, ValidationError):
        raise ProblemError(
            422, "invalid-request", "Invalid Request", f"chunk_size must be a whole number from 1 to {MAX_CHUNK_SIZE}"
        ) from None
    command = _command(
        account,
        fields["entity"],
        fields["action"],
        options,
        key,
        fields.get("callback_url") or None,
        upload_read_options(fields),
    )
    return command, spooler.file_format()
