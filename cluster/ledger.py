"""The deterministic part of the cluster: what a stream entry holds, and what every host does
with it, identically, so that every host holds the same state.

Theory of operation
-------------------
Each host's hub appends (XADD) batches of its workers' requests to one Redis stream instead of
deciding them, and every hub, the origin included, reads the stream back and decides every
entry, in stream order, with the same pure policy (`hub/policy.py`). An entry is one pickled
tuple, `(host, token, seq, items)`:

- `host`: the origin's host number (the high bits of its workers' wids, so of its clients'
  ids: `chatstate.state.HOST_SHIFT`); `token`: the origin hub process's own random name;
  `seq`: that hub's count of the entries it appended, from 1.
- `items`: `(wid, position, replayed, request)` for a worker's request (position: its place on
  that worker's link to this hub process, for acks), or `(None, 0, False, control)` for one of
  the cluster's own requests below.

What a host decides from an entry depends on nothing but the log: the time is the entry id's
milliseconds (Redis's clock, written into the log), msgids are minted from the entry id, and
which host appended first is the stream's order. Duplicates are dropped by `(token, seq)`: an
origin appends in order and re-sends a batch whose reply it never got (Redis went away
mid-write), so everything at or below the highest `seq` already applied from a token is a copy.

The cluster's own requests (`C_*`):

- `C_HOST_UP (host, host_id, boot)`: a host's hub started (or rejoined). The ledger records
  the host with the entry's id as its epoch. A host already up under another boot id was a
  previous incarnation that died (the new one holds its lease): its clients quit first.
- `C_HOST_GONE (host, epoch)`: some hub saw the host's lease lapse. Applied only if the host
  is still up in that epoch, so the many hubs that may notice the same lapse quit its clients
  once, and a stale notice never touches the host after it rejoined.
- `C_WORKER_LOST (wid,)`: a worker died on its host; its clients quit everywhere.
- `C_SEED (accounts, channels)`: what a host's history store kept from before the cluster;
  only the first seed applies (later hosts' stores get the cluster's accounts from the log).
"""
from __future__ import annotations

import pickle
from collections import OrderedDict
from typing import Any

from chatstate.state import E_ACCOUNT

C_HOST_UP = "host up"
C_HOST_GONE = "host gone"
C_WORKER_LOST = "worker lost"
C_SEED = "seed"
CONTROL = frozenset((C_HOST_UP, C_HOST_GONE, C_WORKER_LOST, C_SEED))
HOST_GONE_REASON = "Host left the network"
TOKENS_KEPT = 4096  # origins whose highest seq is remembered (each hub process is one)


def entry_id(raw: bytes | str) -> tuple[int, int]:
    """A stream id, "ms-seq", as a comparable pair."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def id_text(eid: tuple[int, int]) -> str:
    return f"{eid[0]}-{eid[1]}"


def encode(host: int, token: str, seq: int, items: list[tuple]) -> bytes:
    return pickle.dumps((host, token, seq, items), protocol=pickle.HIGHEST_PROTOCOL)


def decode(blob: bytes) -> tuple[int, str, int, list[tuple]]:
    """An entry's fields, or ValueError for anything that is not one (Redis is shared: a stray
    XADD must not stop every hub)."""
    try:
        host, token, seq, items = pickle.loads(blob)
    except Exception as exc:
        raise ValueError(f"not a hubchat entry: {exc}") from None
    if not (isinstance(host, int) and isinstance(token, str) and isinstance(seq, int) and isinstance(items, list)):
        raise ValueError("not a hubchat entry")
    return host, token, seq, items


class Ledger:
    """The cluster's own replicated facts: which hosts are up (and since which entry), what each
    origin has appended, whether the cluster has been seeded. Part of every snapshot."""

    def __init__(self) -> None:
        self.hosts: dict[int, tuple[str, str, tuple[int, int]]] = {}  # host -> (host_id, boot, epoch)
        self.applied: OrderedDict[str, int] = OrderedDict()  # token -> highest seq applied
        self.seeded = False
        self.errors: list[tuple] = []  # (entry id, request op, exception) for the hub to log

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "errors"}

    def __setstate__(self, values: dict) -> None:
        self.__dict__.update(values)
        self.errors = []

    def fresh(self, token: str, seq: int) -> bool:
        """Whether this entry is new (and from now on, that it has been applied)."""
        last = self.applied.get(token, 0)
        if seq <= last:
            return False
        self.applied[token] = seq
        self.applied.move_to_end(token)
        if len(self.applied) > TOKENS_KEPT:
            self.applied.popitem(last=False)
        return True

    def decide(self, policy: Any, eid: str, entry: tuple) -> list[tuple] | None:
        """Everything one entry decides, with its time: `(wid, position, request, outputs)` per
        request, in order; None for a copy of an entry already applied. The same entries in the
        same order give the same outputs and the same state on every host."""
        host, origin, seq, items = entry
        if not self.fresh(origin, seq):
            return None
        parsed = entry_id(eid)
        now = parsed[0] / 1000
        decided = []
        for wid, position, replayed, item in items:
            try:
                if item[0] in CONTROL:
                    outputs = self.control(item, parsed, policy, now)
                else:
                    outputs = policy.decide(item, now, replayed)
            except Exception as exc:  # the same bug on every host: the request is lost, not the entry
                self.errors.append((eid, item[:1], exc))
                outputs = []
            decided.append((wid, position, item, outputs))
        return decided

    def control(self, item: tuple, eid: tuple[int, int], policy: Any, now: float) -> list:
        """Apply one of the cluster's own requests; returns the policy's outputs (quits)."""
        op = item[0]
        if op == C_HOST_UP:
            _, host, host_id, boot = item
            known = self.hosts.get(host)
            if known is not None and known[1] == boot:
                return []  # the same incarnation's hub restarted: nothing changes
            outputs = policy.host_lost(host, now, HOST_GONE_REASON) if known is not None else []
            self.hosts[host] = (host_id, boot, eid)
            return outputs
        if op == C_HOST_GONE:
            _, host, epoch = item
            known = self.hosts.get(host)
            if known is None or known[2] != tuple(epoch):
                return []  # already gone, or back since: a late or doubled notice
            del self.hosts[host]
            return policy.host_lost(host, now, HOST_GONE_REASON)
        if op == C_WORKER_LOST:
            return policy.worker_lost(item[1], now)
        if op == C_SEED:
            if self.seeded:
                return []
            self.seeded = True
            _, accounts, channels = item
            outputs = []
            for key, record in accounts.items():
                if key not in policy.state.accounts:  # as events: every worker's replica learns them
                    event = (E_ACCOUNT, key, record)
                    policy.state.apply(event)
                    outputs.append(event)
            policy.dormant.update({k: v for k, v in channels.items() if k not in policy.state.channels})
            return outputs
        return []
