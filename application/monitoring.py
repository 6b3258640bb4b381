"""What an operator reads off the running system: how far the followers lag behind the
event log, how many actions are in each status, how deep the queues are, and whether
every store and the broker can be reached. Each figure comes through a port (the event
log's head, a follower's stored position, the transport's depth, each store's ping),
so every adapter answers it and the port's contract suite checks it.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from application.event_store import BulkActionLog
from application.ports.messaging import MessageTransport, PositionStore
from application.ports.read_models import ReadModelStore
from domain.bulk_action import ActionStatus

PING_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Followers:
    """The names under which the projector and the relay store their positions."""

    projection: str
    relay: str


class Monitoring:
    def __init__(
        self,
        events: BulkActionLog,
        read_models: ReadModelStore,
        positions: PositionStore,
        transport: MessageTransport,
        followers: Followers,
        queues: Sequence[str],
    ) -> None:
        self.events, self.read_models, self.positions = events, read_models, positions
        self.transport, self.followers, self.queues = transport, followers, tuple(queues)
        # Pings run on long-lived threads: a broker client keeps one connection per
        # thread, and a ping that hangs (a server gone silent) must not hold the check.
        self._pinging = concurrent.futures.ThreadPoolExecutor(max_workers=3, thread_name_prefix="ping")
        self._in_flight: dict[str, concurrent.futures.Future[None]] = {}

    def projection_lag(self) -> int:
        """Events in the notification log the projector has not applied yet."""
        return max(0, self.events.head() - self.read_models.position(self.followers.projection))

    def relay_lag(self) -> int:
        """Events in the notification log the relay has not looked at yet."""
        return max(0, self.events.head() - self.positions.get(self.followers.relay))

    def actions_by_status(self) -> dict[str, int]:
        """Every status, 0 where no action has it (a gauge falls back to 0)."""
        counted = self.read_models.count_by_status()
        return {status.value: counted.get(status.value, 0) for status in ActionStatus}

    def queue_depths(self) -> dict[str, int]:
        return {queue: self.transport.depth(queue) for queue in self.queues}

    def unreachable(self, timeout: float = PING_TIMEOUT_SECONDS) -> list[str]:
        """The stores (and broker) that do not answer a ping within ``timeout``."""
        checks: dict[str, Callable[[], None]] = {
            "event_store": self.events.ping,
            "document_store": self.read_models.ping,
            "broker": self.transport.ping,
        }
        for name, ping in checks.items():
            # A ping still hanging from an earlier check is waited for, not doubled: a
            # prober polling during an outage must not pile up calls behind it.
            running = self._in_flight.get(name)
            if running is None or running.done():
                self._in_flight[name] = self._pinging.submit(ping)
        pending = {name: self._in_flight[name] for name in checks}
        concurrent.futures.wait(pending.values(), timeout=timeout)
        return [name for name, done in pending.items() if not done.done() or done.exception() is not None]

    def close(self) -> None:
        self._pinging.shutdown(wait=False, cancel_futures=True)
