"""Contacts and companies together through the CLI: each contact is linked to the
company of its own account with its company_domain, and ``--link-companies`` creates
each missing company once, however many chunks race on it."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from infrastructure.sqlite.ids import id_text
from infrastructure.stored_json import unpacked
from tests.e2e.cli import bulkactions, import_args

pytestmark = pytest.mark.e2e

DOMAINS = [f"d{n:02}.example.com" for n in range(37)]
ACME_HAS = DOMAINS[:10]  # stored in the importing account before
RIVAL_HAS = DOMAINS[5:15]  # another account's; d10..d14 only there


def _variant(domain: str, n: int) -> str:
    """How a person may write the same domain."""
    return [domain, domain.upper(), f"https://www.{domain}/about", f"www.{domain}"][n % 4]


def _contacts(path: Path, count: int, tag: str) -> Path:
    rows = [f"{tag}{n}@people.org,P{n},{_variant(DOMAINS[n % len(DOMAINS)], n // len(DOMAINS))}" for n in range(count)]
    path.write_text("email,first_name,company_domain\n" + "\n".join(rows) + "\n")
    return path


def _seed(data: Path, tmp: Path, account: str, domains: list[str]) -> None:
    path = tmp / f"{account}-companies.csv"
    path.write_text("domain,name\n" + "".join(f"{d},{account} {d}\n" for d in domains))
    done = bulkactions(data, *import_args(path, "--account", account, entity="company"))
    assert done.code == 0 and done.json_last()["succeeded"] == len(domains), done.stderr


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir where acme holds 10 of the domains and rival 10 (5 of them acme's too):
    made once, copied by each test."""
    tmp = tmp_path_factory.mktemp("seeded")
    _seed(tmp / "data", tmp, "acme", ACME_HAS)
    _seed(tmp / "data", tmp, "rival", RIVAL_HAS)
    return tmp / "data"


def _copy(seeded: Path, tmp: Path) -> Path:
    shutil.copytree(seeded, tmp / "data")
    return tmp / "data"


def _companies(data: Path) -> dict[tuple[str, str], str]:
    """(account, domain) -> company id, as the entity store holds them."""
    with sqlite3.connect(data / "entities.db") as conn:
        rows = conn.execute(
            "SELECT a.name, unique_key, id FROM entities JOIN entity_names a ON a.key = account"
            " JOIN entity_names t ON t.key = entity_type WHERE t.name='company'"
        ).fetchall()
    return {(account, key): id_text(entity_id) for account, key, entity_id in rows}


def _events(data: Path, kind: str, action_id: str) -> list[dict[str, Any]]:
    with sqlite3.connect(data / "events.db") as conn:
        states = conn.execute(
            "SELECT state FROM events JOIN event_topics USING (topic) WHERE name LIKE ?", (f"%{kind}",)
        ).fetchall()
    return [s for s in (json.loads(unpacked(state)) for (state,) in states) if s["action_id"] == action_id]


def _links(data: Path, action_id: str) -> dict[int, dict[str, Any] | None]:
    """Each succeeded row's link (None: no link recorded, its company is not stored)."""
    return {s["row"]: (s.get("links") or {}).get("company_domain") for s in _events(data, "RecordSucceeded", action_id)}


def test_without_link_companies_contacts_link_to_existing_companies_and_name_missing_ones(
    seeded: Path, tmp_path: Path
) -> None:
    data = _copy(seeded, tmp_path)
    done = bulkactions(data, *import_args(_contacts(tmp_path / "c.csv", 74, "a"), "--account", "acme"))
    assert done.code == 0, done.stderr
    summary = done.json_last()
    assert (summary["succeeded"], summary["failed"], summary["skipped"]) == (74, 0, 0)
    companies = _companies(data)
    assert len(companies) == 20  # nothing created
    links = _links(data, summary["action_id"])
    for row, link in links.items():
        domain = DOMAINS[(row - 1) % len(DOMAINS)]
        expected = companies.get(("acme", domain))  # never rival's
        if expected is None:
            assert link is None  # no company of acme's: no link recorded
        else:
            assert link is not None and (link["key"], link["entity_id"], link["status"]) == (domain, expected, "linked")
    assert sum(link is not None for link in links.values()) == 20
    logged = bulkactions(data, "logs", summary["action_id"])
    assert {
        line["row"]: (line.get("links") or {}).get("company_domain") for line in map(json.loads, logged.lines)
    } == links
    history = bulkactions(data, "history", summary["action_id"], "--row", "11")
    # DOMAINS[10] is not acme's: the change shows the value, and no link line follows it.
    assert history.code == 0 and f"company_domain: (none) -> '{DOMAINS[10]}'" in history.stdout
    assert "not linked" not in history.stdout and "company_domain ->" not in history.stdout


def test_link_companies_creates_each_missing_company_once_across_racing_chunks_and_stays_verifiable(
    seeded: Path, tmp_path: Path
) -> None:
    data = _copy(seeded, tmp_path)
    before = _companies(data)
    path = _contacts(tmp_path / "c.csv", 1000, "b")
    options = ("--account", "acme", "--link-companies", "--chunk-size", "10", "--workers", "4")
    done = bulkactions(data, *import_args(path, *options))
    assert done.code == 0, done.stderr
    summary = done.json_last()
    action_id = summary["action_id"]
    assert (summary["total"], summary["succeeded"], summary["failed"], summary["skipped"]) == (1000, 1000, 0, 0)

    companies = _companies(data)
    created = {key: entity_id for key, entity_id in companies.items() if key not in before}
    assert sorted(created) == [("acme", d) for d in DOMAINS[10:]]  # exactly 27, all in acme
    assert {k: v for k, v in companies.items() if k[0] == "rival"} == {
        k: v for k, v in before.items() if k[0] == "rival"
    }
    links = _links(data, action_id)
    assert len(links) == 1000
    for row, link in links.items():
        domain = DOMAINS[(row - 1) % len(DOMAINS)]
        assert (link["key"], link["entity_id"]) == (domain, companies[("acme", domain)])
    assert sorted(link["key"] for link in links.values() if link["status"] == "created") == DOMAINS[10:]
    creations = _events(data, "LinkedEntityCreated", action_id)
    assert sorted((c["entity_id"], c["changes"]["domain"][1]) for c in creations) == sorted(
        (entity_id, domain) for (_, domain), entity_id in created.items()
    )
    assert all(links[c["row"]]["status"] == "created" for c in creations)

    audit = bulkactions(data, "audit", "company", DOMAINS[20], "--account", "acme", "--json")
    [change] = json.loads(audit.stdout)["changes"]
    assert (change["action_id"], change["op"], change["fields"]) == (
        action_id,
        "created",
        {"domain": {"before": None, "after": DOMAINS[20]}},
    )

    # A revert removes the contacts it inserted and leaves the companies (others may link to them).
    reverted = bulkactions(data, "revert", action_id, "--json")
    assert reverted.code == 0 and reverted.json_last()["succeeded"] == 1000, reverted.stderr
    assert _companies(data) == companies
    # The entity store against the events: the companies' creations, the contacts' removals.
    assert bulkactions(data, "verify", "--entities").code == 0


def test_link_companies_is_refused_for_entities_without_links(tmp_path: Path) -> None:
    path = tmp_path / "co.csv"
    path.write_text("domain\nacme.com\n")
    refused = bulkactions(tmp_path / "data", *import_args(path, "--link-companies", entity="company"))
    assert refused.code != 0
    assert "link_companies applies to inserts, updates and upserts of contacts" in refused.stderr
