"""Tenancy of CRM data through the CLI, on each document store: one account never
reads, skips against, updates or upserts another account's entities."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from pymongo import MongoClient

from infrastructure.stored_json import unpacked
from tests.e2e.cli import bulkactions, import_args
from tests.mongo_server import fresh_database

pytestmark = pytest.mark.e2e


@dataclass
class Store:
    env: dict[str, str] | None
    # (account, first_name) of every stored contact, sorted
    first_names: Callable[[Path], list[tuple[str, str]]]


def _sqlite_first_names(data: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(data / "entities.db") as conn:
        rows = conn.execute("SELECT name, data FROM entities JOIN entity_names ON key = account").fetchall()
    return sorted((account, json.loads(unpacked(values))["first_name"]) for account, values in rows)


def _mongo_store(request: pytest.FixtureRequest) -> Store:
    uri, database = fresh_database(request)
    env = {**os.environ, "BULK_DOCUMENT_STORE": "mongodb", "BULK_MONGODB_URI": uri, "BULK_MONGODB_DATABASE": database}

    def first_names(_: Path) -> list[tuple[str, str]]:
        client: MongoClient[dict[str, object]] = MongoClient(uri)
        try:
            docs = client[database]["entities"].find({}, {"account_id": 1, "values": 1})
            return sorted((str(d["account_id"]), str(d["values"]["first_name"])) for d in docs)  # type: ignore[index]
        finally:
            client.close()

    return Store(env, first_names)


@pytest.fixture(params=["sqlite", "mongodb"])
def store(request: pytest.FixtureRequest) -> Store:
    return Store(None, _sqlite_first_names) if request.param == "sqlite" else _mongo_store(request)


def _csv(path: Path, *rows: str) -> Path:
    path.write_text("email,first_name\n" + "".join(row + "\n" for row in rows))
    return path


def _import(data: Path, store: Store, path: Path, account: str, action: str, *options: str) -> dict[str, object]:
    run = bulkactions(data, *import_args(path, "--account", account, *options, action=action), env=store.env)
    assert run.code == 0, run.stderr
    summary: dict[str, object] = run.json_last()
    return summary


def test_two_accounts_each_hold_the_same_email_and_never_touch_each_others(tmp_path: Path, store: Store) -> None:
    data = tmp_path / "data"
    _import(data, store, _csv(tmp_path / "a.csv", "a@x.org,Alice"), "acme", "insert")

    inserted = _import(data, store, _csv(tmp_path / "b.csv", "A@x.org,Bob"), "other", "insert")
    assert (inserted["succeeded"], inserted["skipped"]) == (1, 0)

    updated = _import(data, store, _csv(tmp_path / "b2.csv", "a@x.org,Mallory"), "other", "update")
    upserted = _import(data, store, _csv(tmp_path / "b3.csv", "a@x.org,Eve"), "other", "upsert")
    assert (updated["succeeded"], upserted["succeeded"]) == (1, 1)

    assert store.first_names(data) == [("acme", "Alice"), ("other", "Eve")]


def test_an_update_by_another_accounts_entity_id_is_not_found(tmp_path: Path, store: Store) -> None:
    data = tmp_path / "data"
    created = _import(data, store, _csv(tmp_path / "a.csv", "a@x.org,Alice"), "acme", "insert")
    [line] = [json.loads(line) for line in bulkactions(data, "logs", str(created["action_id"]), env=store.env).lines]
    by_id = tmp_path / "by-id.csv"
    by_id.write_text(f"id,first_name\n{line['entity_id']},Mallory\n")

    summary = _import(data, store, by_id, "other", "update", "--match-by", "id")

    assert summary["failed"] == 1
    logs = bulkactions(data, "logs", str(summary["action_id"]), env=store.env)
    [failed] = [json.loads(line) for line in logs.lines]
    assert failed["errors"][0]["code"] == "not_found"
    assert store.first_names(data) == [("acme", "Alice")]
