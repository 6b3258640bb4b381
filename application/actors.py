"""Who did it: the actor recorded in an action's ``Created`` event (the audit trail's
"by whom"). A key's id, never the key; the operating-system user for the CLI, whose
``--account`` is a label an operator gives, not an identity it proves."""

from __future__ import annotations

import getpass
import re
from typing import Any
from uuid import uuid4

from application.accounts import Account

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id(given: str | None) -> str:
    """The caller's request id if it is a sane one (X-Request-ID), else a new one."""
    return given if given is not None and _REQUEST_ID.match(given) else uuid4().hex


def api_key_actor(account: Account, request: str) -> dict[str, Any]:
    return {"kind": "api_key", "account_id": account.account_id, "key_id": account.key_id, "request_id": request}


def cli_actor(account_id: str) -> dict[str, Any]:
    return {"kind": "cli", "account_id": account_id, "user": _os_user(), "request_id": uuid4().hex}


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (a container's)
        return "unknown"
