"""Who may write a projection's next batch: a claim on its position document.

Used where the server has no multi-document transactions (a standalone server, and
the nx-27017 test server); a replica set commits each batch in one transaction
instead (``projection_transactions``). Without transactions two projectors could
interleave their writes.
Before writing, a projector claims the projection with one compare-and-set on the
position document (same committed position, no live claim); the commit is another
compare-and-set (still our claim, same committed position) that moves the position
and drops the claim. The first compare-and-set also makes the ``expected_position``
check atomic.

A claim is a lease: a projector that dies holding one blocks the projection until
the lease runs out, and then the next projector takes over (and rolls back what the
dead one wrote, see ``read_models``). A projector that stalls longer than the lease
in the middle of a batch could write over its successor: the lease must be far longer
than any batch takes (batches take well under a second; the default is 30 s).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass

from pymongo.collection import Collection
from pymongo.errors import PyMongoError

from infrastructure.mongo.client import Document, exactly
from infrastructure.mongo.stand_in import create_once
from projections.merge import refuses_batch

_POLL_SECONDS = 0.01


@dataclass(frozen=True, slots=True)
class Claim:
    """The right to write the batch that follows ``committed``."""

    projection: str
    token: str | None  # the lease's token; None where a transaction is the guard
    committed: int  # the stored position the claim was taken at


class ProjectionClaims:
    def __init__(self, positions: Collection[Document], lease_seconds: float, wait_seconds: float) -> None:
        self._positions = positions
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds

    def position(self, projection: str) -> int:
        doc = self._positions.find_one({"_id": exactly(projection)})
        return 0 if doc is None else int(doc["position"])

    def claim(self, projection: str, position: int, expected: int | None) -> Claim | None:
        """A claim to write the batch ending at ``position``, or None if it must not be
        written: at or below the stored position, computed from another position than
        ``expected``, or another projector kept its claim for longer than we wait."""
        create_once(self._positions, {"_id": projection, "position": 0, "claim": None, "claim_expires": 0.0})
        deadline = time.monotonic() + self.wait_seconds
        while True:
            doc = self._positions.find_one({"_id": exactly(projection)})
            assert doc is not None
            committed = int(doc["position"])
            if refuses_batch(committed, position, expected):
                return None
            now, holder = time.time(), doc.get("claim")
            if holder is None or float(doc.get("claim_expires", 0.0)) <= now:
                token = uuid.uuid4().hex
                taken = self._positions.update_one(
                    {"_id": exactly(projection), "position": committed, "claim": holder},
                    {"$set": {"claim": token, "claim_expires": now + self.lease_seconds}},
                )
                if taken.matched_count:
                    return Claim(projection, token, committed)
            elif time.monotonic() >= deadline:
                return None
            else:
                time.sleep(_POLL_SECONDS)

    def commit(self, claim: Claim, position: int) -> bool:
        """Move the position and drop the claim, if the claim is still ours."""
        done = self._positions.update_one(
            {"_id": exactly(claim.projection), "claim": claim.token, "position": claim.committed},
            {"$set": {"position": position, "claim": None, "claim_expires": 0.0}},
        )
        return done.matched_count == 1

    def release(self, claim: Claim) -> None:
        """Give a claim up without moving the position (best effort: if this fails too,
        the lease runs out)."""
        with contextlib.suppress(PyMongoError):
            self._positions.update_one(
                {"_id": exactly(claim.projection), "claim": claim.token},
                {"$set": {"claim": None, "claim_expires": 0.0}},
            )
