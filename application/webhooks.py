"""Completion webhooks: which callback URLs are allowed, what is sent, how it is signed,
and when a failed delivery is tried again. Pure rules, plus the check of a URL's
addresses through the ``AddressResolver`` port.

The signature follows Stripe's scheme: ``Webhook-Signature: t=<unix seconds>,v1=<hex>``
where the hex is HMAC-SHA256, keyed with the account's webhook secret, over
``"<t>." + body``. The timestamp is signed too, so a receiver can refuse a replayed
old delivery (see docs/api.md for the five lines that verify it).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from application.ports.webhooks import AddressResolver

SIGNATURE_HEADER = "Webhook-Signature"
MAX_URL_LENGTH = 2000


class CallbackUrlError(ValueError):
    """A callback URL that is not http(s), or whose host is (or resolves to) a loopback,
    private, link-local or otherwise internal address."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Webhook-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, body: bytes, header: str, now: int, tolerance: int = 300) -> bool:
    """What a receiver does: the signature matches and is recent."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    if "t" not in parts or "v1" not in parts or not parts["t"].isdigit():
        return False
    expected = signature(secret, int(parts["t"]), body).rpartition("v1=")[2]
    return hmac.compare_digest(expected, parts["v1"]) and abs(now - int(parts["t"])) <= tolerance


def payload(delivery_id: str, event: str, occurred_at: str, action: dict[str, Any]) -> str:
    """The JSON body: what happened, when, and the action's final status and counts."""
    body = {"id": delivery_id, "type": f"bulk_action.{event}", "occurred_at": occurred_at, "data": action}
    return orjson.dumps(body).decode()


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """Waits of ``base * 2**(n-1)`` seconds after failed attempt n, at most ``most``,
    until ``retry_for`` seconds after the delivery was scheduled: one last attempt is
    made at that moment, so attempts span at least ``retry_for`` (24 h by default)."""

    base: float
    most: float
    retry_for: float

    def next_attempt_at(self, attempts: int, now: float, give_up_at: float) -> float | None:
        if now >= give_up_at:
            return None
        delay: float = min(self.base * 2.0 ** max(attempts - 1, 0), self.most)
        return min(now + delay, give_up_at)


@dataclass(frozen=True, slots=True)
class CallbackUrls:
    """Only http(s), and only public addresses (unless ``allow_private``): a callback
    must not make this service call into its own network (SSRF). Every address the
    host resolves to is checked, and the sender connects to a checked one."""

    resolver: AddressResolver
    allow_private: bool

    def checked(self, url: str) -> str:
        """The URL as given, if it may be called; ``CallbackUrlError`` if not."""
        self.address(url)
        return url

    def address(self, url: str) -> str:
        """An address of the URL's host that may be called (the first of them)."""
        host, port = _host_and_port(url)
        try:
            found = list(self.resolver.addresses(host, port))
        except LookupError as exc:
            raise CallbackUrlError(f"callback_url: cannot resolve host {host!r} ({exc})") from None
        if not found:
            raise CallbackUrlError(f"callback_url: host {host!r} has no address")
        if not self.allow_private:
            for address in found:
                if not _public(address):
                    raise CallbackUrlError(
                        f"callback_url: host {host!r} is (or resolves to) {address}, a loopback, private or"
                        " reserved address; only public addresses are called"
                    )
        return found[0]


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", maxsplit=1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback too
    return ip.is_global and not ip.is_multicast


def checked_callback_syntax(url: str) -> str:
    """The URL, if it is one http(s) URL with a host (no address is looked up)."""
    _host_and_port(url)
    return url


def _host_and_port(url: str) -> tuple[str, int]:
    if len(url) > MAX_URL_LENGTH or any(c.isspace() or ord(c) < 32 for c in url):
        raise CallbackUrlError(f"callback_url must be one URL of at most {MAX_URL_LENGTH} characters, no spaces")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise CallbackUrlError(f"callback_url {url!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CallbackUrlError(f"callback_url {url!r} must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise CallbackUrlError("callback_url must not carry credentials (user:password@)")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)
