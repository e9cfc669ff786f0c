"""The link's own upkeep: a new hub's view of the state (after a restart) and acknowledgements
of the worker's requests."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chatstate.state import State

if TYPE_CHECKING:
    from workers.item_target import HubItemTarget


def on_sync(w: "HubItemTarget", snapshot: dict) -> None:
    """A new hub's view: adopt it, keeping what this worker knows of its own clients."""
    mine = w.state.snapshot(only_wid=w.wid)
    w.state = State.from_snapshot(snapshot, w.wid)
    w.state.merge(mine)
    w.log_at = None  # the hub says where this state is in the cluster's stream (D_AT), if it is in one


def on_at(w: "HubItemTarget", stream_id: str, hub_token: str) -> None:
    w.log_at, w.link_hub = stream_id, hub_token


def on_ack(w: "HubItemTarget", count: int) -> None:
    w.acknowledged(count)


def on_handled(w: "HubItemTarget", count: int) -> None:
    w.handled = max(w.handled, count)


