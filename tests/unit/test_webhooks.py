"""Webhook rules: the signature, the retry schedule, which callback URLs may be called,
and Created v2 events read as v3 (no callback)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from eventsourcing.persistence import JSONTranscoder

from application.webhooks import CallbackUrlError, CallbackUrls, RetrySchedule, signature, verify
from domain.bulk_action import BulkAction
from infrastructure.events.mapper import FastMapper
from infrastructure.settings import Settings
from infrastructure.stored_json import unpacked

pytestmark = pytest.mark.unit


def test_the_signature_is_hmac_sha256_of_the_timestamp_and_the_body() -> None:
    body = b'{"id":"x"}'
    header = signature("whsec_k", 1_800_000_000, body)
    expected = hmac.new(b"whsec_k", b"1800000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1800000000,v1={expected}"
    assert verify("whsec_k", body, header, now=1_800_000_100)
    assert not verify("whsec_k", body + b" ", header, now=1_800_000_100)
    assert not verify("whsec_other", body, header, now=1_800_000_100)
    assert not verify("whsec_k", body, header, now=1_800_000_000 + 301)  # too old: a replay
    assert not verify("whsec_k", body, "garbage", now=1_800_000_000)


def test_attempts_back_off_exponentially_and_span_at_least_a_day_by_default() -> None:
    default = {name: field.default for name, field in Settings.model_fields.items()}
    schedule = RetrySchedule(
        default["webhook_backoff_base_seconds"],
        default["webhook_backoff_max_seconds"],
        default["webhook_retry_for_seconds"],
    )
    start = 1_000_000.0
    give_up_at = start + schedule.retry_for
    times, attempts, now = [start], 1, start
    while (after := schedule.next_attempt_at(attempts, now, give_up_at)) is not None:
        times.append(after)
        now, attempts = after, attempts + 1
    waits = [b - a for a, b in itertools.pairwise(times)]
    assert waits[:4] == [30, 60, 120, 240] and max(waits) == 3600
    assert times[-1] - start == 24 * 3600  # the last attempt exactly a day after the first
    assert len(times) == 31


class FakeResolver:
    def __init__(self, table: dict[str, Sequence[str]]) -> None:
        self.table = table

    def addresses(self, host: str, port: int) -> Sequence[str]:
        if host not in self.table:
            raise LookupError("Name or service not known")
        return self.table[host]


RESOLVER = FakeResolver(
    {
        "hooks.example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
        "sneaky.example.com": ["93.184.215.14", "10.0.0.7"],  # one private address is enough to refuse
        "localhost": ["127.0.0.1", "::1"],
        "mapped.example.com": ["::ffff:127.0.0.1"],
        "93.184.215.14": ["93.184.215.14"],
        "169.254.169.254": ["169.254.169.254"],
        "192.168.1.1": ["192.168.1.1"],
        "0.0.0.0": ["0.0.0.0"],
    }
)


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/bulk?x=1", "http://hooks.example.com:8080/", "http://93.184.215.14/h"]
)
def test_public_http_and_https_urls_are_allowed(url: str) -> None:
    urls = CallbackUrls(RESOLVER, allow_private=False)
    assert urls.checked(url) == url
    assert urls.address(url) in RESOLVER.table[url.split("/")[2].split(":", maxsplit=1)[0]]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://localhost/h", "loopback, private"),
        ("http://sneaky.example.com/h", "10.0.0.7"),
        ("http://mapped.example.com/h", "::ffff:127.0.0.1"),
        ("http://169.254.169.254/latest/meta-data", "loopback, private"),
        ("http://192.168.1.1/", "loopback, private"),
        ("http://0.0.0.0/", "loopback, private"),
        ("ftp://hooks.example.com/h", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("https://user:pw@hooks.example.com/", "credentials"),
        ("https://nowhere.invalid/", "cannot resolve"),
        ("https://hooks.example.com/a b", "no spaces"),
        ("http://hooks.example.com:99999/", "not a URL"),
    ],
)
def test_other_urls_are_refused_with_the_reason(url: str, why: str) -> None:
    with pytest.raises(CallbackUrlError, match=why.replace("?", r"\?")):
        CallbackUrls(RESOLVER, allow_private=False).checked(url)


def test_private_addresses_are_allowed_only_when_the_setting_says_so() -> None:
    assert CallbackUrls(RESOLVER, allow_private=True).address("http://localhost:9/h") == "127.0.0.1"
    with pytest.raises(CallbackUrlError, match="http:// or https://"):
        CallbackUrls(RESOLVER, allow_private=True).checked("gopher://localhost/")


def test_a_created_event_of_v2_reads_as_v3_without_a_callback() -> None:
    mapper = FastMapper(JSONTranscoder())
    action = BulkAction.submit(
        uuid.uuid4(), "acc", "contact", "insert", None, {"kind": "inline"}, 2, 4, None, "https://x"
    )
    stored = mapper.to_stored_event(action.collect_events()[0])
    state = orjson.loads(unpacked(stored.state))
    assert state["class_version"] == 6 and state["callback_url"] == "https://x"
    del state["callback_url"]
    state["class_version"] = 2
    old = type(stored)(stored.originator_id, stored.originator_version, stored.topic, orjson.dumps(state))
    assert mapper.to_domain_event(old).callback_url is None
    assert mapper.to_domain_event(stored).callback_url == "https://x"


def test_the_verification_shown_in_the_api_docs_accepts_our_signature_and_nothing_else() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    snippet = docs.split("**Verify**", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert len([line for line in snippet.splitlines() if line.strip()]) <= 5
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)
    body, now = b'{"id":"x"}', int(time.time())
    assert namespace["verify"]("whsec_k", body, signature("whsec_k", now, body))
    assert not namespace["verify"]("whsec_k", body + b"!", signature("whsec_k", now, body))
    assert not namespace["verify"]("whsec_k", body, signature("whsec_k", now - 3600, body))
