"""MongoDB read models against the SQLite ones: redelivery, crashes inside ``apply``
and replay must all end in the very documents SQLite holds after one clean pass.

Both ways of committing a batch run: under a claim (a standalone server) and in a
transaction (a replica set; on nx-27017 too, for one writer at a time). Tests of
concurrent transactions are marked ``mongodb_replica_set``: nx-27017's transactions
are not isolated, so there they are reported as skipped, with the reason.
"""

from __future__ import annotations

import random
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from application.ports.read_models import ActionFilter, ActionView, LogLine, ReadModelStore, ViewChanges
from infrastructure.mongo.read_models import (
    MongoReadModelStore,
    collection_name,
    drop_read_models,
    promote_read_models,
)
from infrastructure.sqlite.read_models import SQLiteReadModelStore
from tests.mongo_server import session_replica_set, transactions_missing

pytestmark = pytest.mark.integration
PROJECTION = "actions"


MODES = {"claims": False, "transactions": True}


def _transactions(mode: str) -> bool:
    if MODES[mode] and (why := transactions_missing()) is not None:
        pytest.skip(why)
    return MODES[mode]


@pytest.fixture(params=sorted(MODES))
def mongo(database: tuple[str, str], request: pytest.FixtureRequest) -> Iterator[MongoReadModelStore]:
    store = MongoReadModelStore(*database, transactions=_transactions(request.param))
    yield store
    store.close()


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[SQLiteReadModelStore]:
    store = SQLiteReadModelStore(tmp_path / "readmodels.db")
    yield store
    store.close()


# ---------------------------------------------------------------- a synthetic event log


@dataclass(frozen=True)
class Event:
    """What the actions projection reacts to, reduced to what a read model sees."""

    position: int
    kind: str  # created, input_queued, chunk_queued, outcome, chunk_processed, completed
    action_id: str
    chunk_no: int = 0
    row: int = 0
    outcome: str = ""


def event_log(seed: int, actions: int = 3) -> list[Event]:
    """Several actions' events, interleaved at random, each action's in its own order."""
    rng = random.Random(seed)
    streams: list[list[tuple[str, str, int, int, str]]] = []
    for n in range(actions):
        action_id = f"{n:02d}-{uuid.UUID(int=rng.getrandbits(128))}"
        stream = [("created", action_id, 0, 0, ""), ("input_queued", action_id, 0, 0, "")]
        row = 0
        for chunk_no in range(rng.randint(1, 4)):
            stream.append(("chunk_queued", action_id, chunk_no, 0, ""))
            for _ in range(rng.randint(1, 5)):
                row += 1
                outcome = rng.choice(["succeeded", "succeeded", "failed", "skipped"])
                stream.append(("outcome", action_id, chunk_no, row, outcome))
            stream.append(("chunk_processed", action_id, chunk_no, 0, ""))
        stream.append(("completed", action_id, 0, row, ""))
        streams.append(stream)
    merged: list[Event] = []
    while any(streams):
        stream = rng.choice([s for s in streams if s])
        kind, action_id, chunk_no, row, outcome = stream.pop(0)
        merged.append(Event(len(merged) + 1, kind, action_id, chunk_no, row, outcome))
    return merged


def _at(position: int) -> str:
    return f"2026-03-01T10:{position // 60:02d}:{position % 60:02d}+00:00"


def project(events: list[Event]) -> ViewChanges:
    """What ``projections.actions.project`` makes of such events, batch by batch."""
    changes = ViewChanges()
    for e in events:
        if e.kind == "created":
            changes.new_actions.append(
                ActionView(
                    e.action_id,
                    f"2026-01-0{int(e.action_id[:2]) % 2 + 1}",
                    "contact",
                    "insert",
                    None,
                    "f.csv",
                    5,
                    None,
                    _at(e.position),
                )
            )
            continue
        if e.kind == "chunk_queued":  # the input stays in the event store: nothing to project
            continue
        delta = changes.delta(e.action_id)
        if e.kind == "input_queued":
            delta.status, delta.total, delta.chunk_count = "PROCESSING", 99, 9
        elif e.kind == "chunk_processed":
            delta.chunks_done += 1
        elif e.kind == "completed":
            delta.status, delta.finished_at = "COMPLETED", _at(e.position)
        else:
            setattr(delta, e.outcome, getattr(delta, e.outcome) + 1)
            if delta.first_outcome_at is None:
                delta.first_outcome_at = _at(e.position)
            delta.last_outcome_at = _at(e.position)
            errors = [{"field": "email", "code": "missing", "message": "x"}] if e.outcome == "failed" else []
            changes.log_lines.append(
                LogLine(
                    e.action_id,
                    e.row,
                    e.row + 1,
                    e.chunk_no,
                    e.outcome,
                    f"ent-{e.row}",
                    "created",
                    errors,
                    None,
                    None,
                    e.position,
                )
            )
    return changes


def batches(events: list[Event], sizes: Callable[[], int]) -> Iterator[tuple[int, list[Event]]]:
    start = 0
    while start < len(events):
        end = min(len(events), start + sizes())
        yield events[end - 1].position, events[start:end]
        start = end


def snapshot(store: ReadModelStore, events: list[Event]) -> dict[str, Any]:
    action_ids = sorted({e.action_id for e in events})
    return {
        "position": store.position(PROJECTION),
        "actions": [store.get_action(a) for a in action_ids],
        "logs": {a: store.logs(a, limit=-1) for a in action_ids},
        "listed": store.list_actions(ActionFilter(), limit=-1),
    }


def project_cleanly(store: ReadModelStore, events: list[Event]) -> dict[str, Any]:
    for position, batch in batches(events, lambda: len(events)):
        assert store.apply(PROJECTION, position, project(batch))
    return snapshot(store, events)


def sqlite_snapshot_upto(position: int, events: list[Event], seen: list[Event]) -> dict[str, Any]:
    """What SQLite holds after one clean pass over the events up to ``position``."""
    with tempfile.TemporaryDirectory() as scratch:
        store = SQLiteReadModelStore(Path(scratch) / "readmodels.db")
        try:
            store.apply(PROJECTION, position, project([e for e in events if e.position <= position]))
            return snapshot(store, seen)
        finally:
            store.close()


class CrashError(Exception):
    pass


def crash_at(store: MongoReadModelStore, step: str, after_calls: int = 0) -> Callable[[], None]:
    """Make ``step`` of the next ``apply`` raise after ``after_calls`` calls; returns undo."""
    original = getattr(store, step)
    calls = {"n": 0}

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > after_calls:
            raise CrashError(step)
        return original(*args, **kwargs)

    setattr(store, step, failing)
    return lambda: delattr(store, step)


STEPS = ["_insert_actions", "_insert_log_lines", "_insert_entity_history", "_apply_deltas", "_commit"]

# ---------------------------------------------------------------- tests


def test_batches_of_any_size_give_the_sqlite_read_models(
    mongo: MongoReadModelStore, sqlite: SQLiteReadModelStore
) -> None:
    events = event_log(seed=1)
    expected = project_cleanly(sqlite, events)
    rng = random.Random(7)
    for position, batch in batches(events, lambda: rng.randint(1, 6)):
        assert mongo.apply(PROJECTION, position, project(batch))
    assert snapshot(mongo, events) == expected


def test_a_redelivered_or_older_batch_changes_nothing(mongo: MongoReadModelStore, sqlite: SQLiteReadModelStore) -> None:
    events = event_log(seed=2)
    expected = project_cleanly(sqlite, events)
    done: list[tuple[int, list[Event]]] = []
    for position, batch in batches(events, lambda: 4):
        assert mongo.apply(PROJECTION, position, project(batch))
        done.append((position, batch))
        for old_position, old_batch in done:
            assert not mongo.apply(PROJECTION, old_position, project(old_batch))
    assert snapshot(mongo, events) == expected


CRASH_POINTS = [
    ("_insert_actions", 0),
    ("_insert_entity_history", 0),
    ("_insert_log_lines", 0),
    ("_apply_delta", 0),
    ("_apply_delta", 1),
    ("_commit", 0),
]


@pytest.mark.parametrize(("step", "after_calls"), CRASH_POINTS)
def test_a_crash_inside_apply_then_the_same_batch_again_gives_exact_results(
    mongo: MongoReadModelStore, sqlite: SQLiteReadModelStore, step: str, after_calls: int
) -> None:
    events = event_log(seed=3)
    expected = project_cleanly(sqlite, events)
    crashes = 0
    for position, batch in batches(events, lambda: 7):
        undo = crash_at(mongo, step, after_calls)
        try:
            applied = mongo.apply(PROJECTION, position, project(batch))
        except CrashError:
            applied = False
            crashes += 1
        undo()
        # A batch the crash did not reach (one action only, say) is simply done.
        assert mongo.apply(PROJECTION, position, project(batch)) is not applied
    assert crashes > 0
    assert snapshot(mongo, events) == expected


def test_a_crash_then_a_longer_batch_from_the_same_start_counts_every_event_once(
    mongo: MongoReadModelStore, sqlite: SQLiteReadModelStore
) -> None:
    events = event_log(seed=4)
    expected = project_cleanly(sqlite, events)
    start = 0
    while start < len(events):
        short, long = events[start : start + 3], events[start : start + 8]
        undo = crash_at(mongo, "_commit")  # every delta written, the position not
        with pytest.raises(CrashError):
            mongo.apply(PROJECTION, short[-1].position, project(short))
        undo()
        assert mongo.apply(PROJECTION, long[-1].position, project(long))
        start += len(long)
    assert snapshot(mongo, events) == expected


def test_a_crash_then_a_shorter_batch_from_the_same_start_counts_every_event_once(
    mongo: MongoReadModelStore, sqlite: SQLiteReadModelStore
) -> None:
    events = event_log(seed=5)
    expected = project_cleanly(sqlite, events)
    start = 0
    while start < len(events):
        long, short = events[start : start + 8], events[start : start + 3]
        undo = crash_at(mongo, "_commit")
        with pytest.raises(CrashError):
            mongo.apply(PROJECTION, long[-1].position, project(long))
        undo()
        assert mongo.apply(PROJECTION, short[-1].position, project(short))
        # Counts and status never run ahead of the committed position. (Log lines and
        # new actions the crashed batch inserted may: they are what later events say.)
        upto = sqlite_snapshot_upto(short[-1].position, events, short)
        known = [view for view in upto["actions"] if view is not None]
        assert [mongo.get_action(view.action_id) for view in known] == known
        start += len(short)
    assert snapshot(mongo, events) == expected


@pytest.mark.parametrize("seed", range(12))
def test_random_crashes_and_rebatching_always_end_in_the_sqlite_read_models(
    mongo: MongoReadModelStore, sqlite: SQLiteReadModelStore, seed: int
) -> None:
    events = event_log(seed=100 + seed, actions=4)
    expected = project_cleanly(sqlite, events)
    rng = random.Random(seed)
    crashes = 0
    while (committed := mongo.position(PROJECTION)) < events[-1].position:
        pending = [e for e in events if e.position > committed]  # what a projector reads next
        batch = pending[: rng.randint(1, 9)]
        if rng.random() < 0.5:
            undo = crash_at(mongo, rng.choice([*STEPS, "_apply_delta"]), rng.randint(0, 1))
            try:
                mongo.apply(PROJECTION, batch[-1].position, project(batch))
            except CrashError:
                crashes += 1
            undo()
            continue
        mongo.apply(PROJECTION, batch[-1].position, project(batch))
    assert crashes > 0
    assert snapshot(mongo, events) == expected


def test_a_delta_for_an_unknown_action_changes_nothing_as_in_sqlite(
    mongo: MongoReadModelStore, sqlite: SQLiteReadModelStore
) -> None:
    for store in (mongo, sqlite):
        changes = ViewChanges()
        changes.delta("nobody").succeeded = 3
        assert store.apply(PROJECTION, 5, changes)
        assert store.get_action("nobody") is None
        assert store.position(PROJECTION) == 5


def _many_actions(count: int) -> list[ActionView]:
    """Actions with tied creation times and ids and accounts that look like dates."""
    rng = random.Random(5)
    views = []
    for _ in range(count):
        created = f"2026-01-0{rng.randint(1, 4)}T00:00:0{rng.randint(0, 2)}+00:00"
        account = rng.choice(["2026-01-01", "2026-01-01T00:00:00+00:00", "acme"])
        views.append(
            ActionView(
                str(uuid.UUID(int=rng.getrandbits(128))),
                account,
                rng.choice(["contact", "company"]),
                "insert",
                None,
                None,
                10,
                None,
                created,
                status=rng.choice(["QUEUEING", "COMPLETED"]),
            )
        )
    return views


FILTERS = [
    ActionFilter(),
    ActionFilter(account_id="2026-01-01"),
    ActionFilter(account_id="2026-01-01T00:00:00+00:00", status="COMPLETED"),
    ActionFilter(entity_type="company", created_from="2026-01-02"),
    ActionFilter(created_from="2026-01-02T00:00:01+00:00", created_to="2026-01-04"),
    ActionFilter(created_to="2026-01-03T00:00:01"),
]


@pytest.mark.parametrize("filt", FILTERS, ids=range(len(FILTERS)))
@pytest.mark.parametrize("limit", [1, 3, 7])
def test_listing_pages_through_the_same_actions_as_sqlite(
    mongo: MongoReadModelStore, sqlite: SQLiteReadModelStore, filt: ActionFilter, limit: int
) -> None:
    views = _many_actions(40)
    for store in (mongo, sqlite):
        store.apply(PROJECTION, 1, ViewChanges(new_actions=views))

    def pages(store: ReadModelStore) -> list[list[str]]:
        found, before = [], None
        while page := store.list_actions(filt, before=before, limit=limit):
            found.append([v.action_id for v in page])
            before = (page[-1].created_at, page[-1].action_id)
        return found

    expected = pages(sqlite)
    assert sum(len(p) for p in expected) > 0
    assert pages(mongo) == expected
    assert mongo.list_actions(filt, limit=0) == sqlite.list_actions(filt, limit=0) == []
    cursor = (views[0].created_at, views[0].action_id)
    assert mongo.list_actions(filt, before=cursor, limit=limit) == sqlite.list_actions(filt, before=cursor, limit=limit)


def test_logs_page_and_filter_as_in_sqlite(mongo: MongoReadModelStore, sqlite: SQLiteReadModelStore) -> None:
    events = event_log(seed=6)
    project_cleanly(sqlite, events)
    project_cleanly(mongo, events)
    for action_id in sorted({e.action_id for e in events}):
        for outcome in (None, "succeeded", "failed", "skipped"):
            for after_row, limit in ((0, 1000), (2, 2), (3, 0), (0, -1), (100, 5)):
                assert mongo.logs(action_id, outcome=outcome, after_row=after_row, limit=limit) == sqlite.logs(
                    action_id, outcome=outcome, after_row=after_row, limit=limit
                )


def test_read_models_built_aside_replace_the_live_ones_when_promoted(
    database: tuple[str, str], mongo: MongoReadModelStore, sqlite: SQLiteReadModelStore
) -> None:
    uri, name = database
    stale, events = event_log(seed=8), event_log(seed=9)
    project_cleanly(mongo, stale)
    expected = project_cleanly(sqlite, events)
    drop_read_models(mongo._client, name, prefix="rebuild")
    aside = MongoReadModelStore(uri, name, prefix="rebuild")
    assert aside.position(PROJECTION) == 0
    assert project_cleanly(aside, events) == expected
    aside.close()
    promote_read_models(mongo._client, name, prefix="rebuild")
    live = MongoReadModelStore(uri, name)
    try:
        assert snapshot(live, events) == expected
        assert all(live.get_action(a) is None for a in {e.action_id for e in stale})
        assert not any(n.startswith("rebuild__") for n in live._client[name].list_collection_names())
        later = [e for e in event_log(seed=10) if e.kind == "created"]
        assert live.apply(PROJECTION, events[-1].position + 1, project(later[:1]))
        assert live.get_action(later[0].action_id) is not None
    finally:
        live.close()


def test_dropping_a_set_built_aside_leaves_the_live_one_alone(
    database: tuple[str, str], mongo: MongoReadModelStore
) -> None:
    uri, name = database
    events = event_log(seed=11)
    live = project_cleanly(mongo, events)
    aside = MongoReadModelStore(uri, name, prefix="verify")
    project_cleanly(aside, events)
    aside.close()
    drop_read_models(mongo._client, name, prefix="verify")
    assert collection_name("verify", "actions") not in mongo._client[name].list_collection_names()
    assert snapshot(mongo, events) == live
    with pytest.raises(AssertionError):
        drop_read_models(mongo._client, name, prefix="")


# ---------------------------------------------------------------- projectors at once


def _projector_loop(store: ReadModelStore, events: list[Event], page: int) -> None:
    """What ``Projector.run_once`` does, over the synthetic log, until all is projected."""
    while (committed := store.position(PROJECTION)) < events[-1].position:
        batch = [e for e in events if e.position > committed][:page]
        # Refused when another projector moved the position first: read again.
        store.apply(PROJECTION, batch[-1].position, project(batch), expected_position=committed)


@pytest.mark.parametrize("mode", ["claims", pytest.param("transactions", marks=pytest.mark.mongodb_replica_set)])
@pytest.mark.parametrize("seed", range(4))
def test_projectors_running_at_once_with_different_pages_count_every_event_once(
    database: tuple[str, str], sqlite: SQLiteReadModelStore, seed: int, mode: str
) -> None:
    events = event_log(seed=200 + seed, actions=5)
    expected = project_cleanly(sqlite, events)
    stores = [MongoReadModelStore(*database, transactions=MODES[mode]) for _ in range(3)]
    threads = [
        threading.Thread(target=_projector_loop, args=(store, events, page))
        for store, page in zip(stores, (2, 3, 5), strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert snapshot(stores[0], events) == expected
    finally:
        for store in stores:
            store.close()


def test_a_projector_that_died_holding_its_claim_is_taken_over_when_the_lease_ends(
    database: tuple[str, str], sqlite: SQLiteReadModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = event_log(seed=12)
    expected = project_cleanly(sqlite, events)
    dying = MongoReadModelStore(*database, claim_seconds=0.5, transactions=False)
    monkeypatch.setattr(dying._claims, "release", lambda claim: None)  # as if the process died
    long = events[:9]
    undo = crash_at(dying, "_commit")
    with pytest.raises(CrashError):
        dying.apply(PROJECTION, long[-1].position, project(long))
    undo()
    successor = MongoReadModelStore(*database, claim_seconds=30, claim_wait_seconds=0.1, transactions=False)
    try:
        short = events[:4]
        assert not successor.apply(PROJECTION, short[-1].position, project(short), expected_position=0)
        deadline = time.monotonic() + 10
        while not successor.apply(PROJECTION, short[-1].position, project(short), expected_position=0):
            assert time.monotonic() < deadline, "the dead projector's claim never ran out"
        project_rest(successor, events)
        assert snapshot(successor, events) == expected
    finally:
        successor.close()
        dying.close()


def project_rest(store: ReadModelStore, events: list[Event]) -> None:
    committed = store.position(PROJECTION)
    rest = [e for e in events if e.position > committed]
    assert store.apply(PROJECTION, rest[-1].position, project(rest), expected_position=committed)


# ---------------------------------------------------------------- the transaction path


def test_the_store_commits_in_transactions_exactly_where_the_server_is_a_replica_set(
    database: tuple[str, str],
) -> None:
    store = MongoReadModelStore(*database)
    try:
        assert store.transactions is (session_replica_set() is not None)
    finally:
        store.close()


def test_a_batch_that_never_commits_its_transaction_leaves_nothing(
    database: tuple[str, str],
) -> None:
    store = MongoReadModelStore(*database, transactions=_transactions("transactions"))
    try:
        events = event_log(seed=13)
        undo = crash_at(store, "_commit")  # every write made, the position not moved
        with pytest.raises(CrashError):
            store.apply(PROJECTION, events[-1].position, project(events))
        undo()
        action_ids = {e.action_id for e in events}
        assert store.position(PROJECTION) == 0
        assert all(store.get_action(a) is None and store.logs(a) == [] for a in action_ids)
        assert store.list_actions(ActionFilter(), limit=-1) == []
    finally:
        store.close()


@pytest.mark.mongodb_replica_set
def test_a_projector_that_stalls_mid_batch_cannot_write_over_the_one_that_committed_first(
    database: tuple[str, str], sqlite: SQLiteReadModelStore
) -> None:
    """What the claims' lease cannot promise (docs/mongodb-gaps.md, known limits). The
    stalled projector has read the position and decided to write its batch; meanwhile
    another commits the same batch. When the stalled one goes on, its writes conflict,
    its transaction runs again, and it is refused."""
    events = event_log(seed=14)
    expected = project_cleanly(sqlite, events)
    stalled, successor = (MongoReadModelStore(*database, transactions=True) for _ in range(2))
    inside, go_on = threading.Event(), threading.Event()
    first_write = stalled._roll_back_uncommitted

    def stall_then_write(*args: Any) -> None:
        inside.set()
        assert go_on.wait(60), "the test never let the stalled projector go on"
        first_write(*args)

    stalled._roll_back_uncommitted = stall_then_write  # type: ignore[method-assign]
    results: list[bool] = []

    def stalled_projector() -> None:
        results.append(stalled.apply(PROJECTION, events[-1].position, project(events), expected_position=0))

    thread = threading.Thread(target=stalled_projector)
    thread.start()
    try:
        assert inside.wait(60)
        assert successor.apply(PROJECTION, events[-1].position, project(events), expected_position=0)
    finally:
        go_on.set()
        thread.join(120)
    try:
        assert results == [False]
        assert snapshot(successor, events) == expected
    finally:
        stalled.close()
        successor.close()
