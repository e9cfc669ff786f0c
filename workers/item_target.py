"""What the functions applying the hub's items (workers/events.py and the modules it gathers)
use of the worker: its sessions, its replica, its outbox and its link. `Worker` provides it."""
from __future__ import annotations

from typing import Any, Protocol

from chatstate.state import State
from workers.session import Outbox, Session


class HubItemTarget(Protocol):
    wid: int
    state: State
    sessions: dict[int, Session]
    outbox: Outbox
    delivered_ids: Any  # workers.worker.RecentIds: the message ids already delivered
    hub_time: float  # the time on the latest message from the hub, for the next hub's hello
    log_at: str | None  # with --cluster: the last stream entry whose effects the replica holds (D_AT)
    link_hub: str | None  # with --cluster: the token of the hub at the other end of this link (D_AT)
    handled: int  # items of the current link the hub has handled (D_HANDLED)
    deliveries: int  # relayed messages written to local recipients, for /metrics

    def unflushed(self) -> list[Session]: ...

    def first_delivery(self, msgid: str) -> bool: ...

    def request(self, item: tuple) -> None: ...

    def acknowledged(self, count: int) -> None: ...

    def idle_told(self, asker: int, target: int, idle: int | None) -> None: ...
