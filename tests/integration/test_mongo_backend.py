"""The MongoDB backend of the composition root: one client per process, shared by the
stores it makes, and the read-model sets a replay and verify use."""

from __future__ import annotations

import pytest

from application.accounts import Account, AccountLimits
from application.ports.read_models import ActionView, ViewChanges
from infrastructure.mongo.backend import MongoDocumentStores

pytestmark = pytest.mark.integration


def test_the_stores_share_one_client_which_only_the_backend_closes(database: tuple[str, str]) -> None:
    stores = MongoDocumentStores(*database)
    made = [stores.open(), stores.quota(), stores.accounts(), stores.rate_limiter()]
    try:
        assert {id(store._client) for store in made} == {id(stores.client)}
        for store in made:
            store.close()
        accounts = stores.accounts()
        accounts.add(Account("acc_1", "acme", "h1", AccountLimits(1, 1, 1), "t"))  # the client still works
        assert accounts.get("acc_1") is not None
    finally:
        stores.close()
    with pytest.raises(Exception, match="after close"):
        stores.accounts().get("acc_1")


def test_a_set_built_aside_replaces_the_live_read_models_when_promoted(database: tuple[str, str]) -> None:
    stores = MongoDocumentStores(*database)
    view = ActionView("a1", "acme", "contact", "insert", None, None, 10, 1, "2026-11-01T12:00:00+00:00")
    try:
        stores.discard("rebuild")
        aside = stores.open("rebuild")
        assert aside.apply("actions", 1, ViewChanges(new_actions=[view]))
        aside.close()
        live = stores.open()
        assert live.get_action("a1") is None
        stores.promote("rebuild")
        assert live.get_action("a1") == view and live.position("actions") == 1
        live.close()
    finally:
        stores.close()
