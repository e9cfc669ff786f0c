"""The hub of one host of several (`--cluster redis://...`): requests go to the shared log, and
decisions come back from it.

Theory of operation
-------------------
The single-host hub decides each request as it arrives. This one appends it to the cluster's
Redis stream (`cluster/bridge.py`) and decides nothing until the entry comes back: every hub,
this one included, reads the one stream and decides every entry with the same policy, with
the entry's own time, so every host's state is the same and every host agrees on every
outcome (two hosts' clients claiming one nick: the first entry wins, everywhere). What follows
from a decision is the same as on one host: events go to the log (`hub/log.py`), whose readers
route them to this host's workers and file them in this host's history store; replies go to
the worker holding the client, which only its own host has a link to (wids carry the host's
number, `chatstate.state.HOST_SHIFT`); store questions are asked only by the host of the asker.

A worker's request is acknowledged once its entry has come back and been decided here (and,
as on one host, its effects are on the links and in the store), so a hub that dies loses
nothing: the workers replay to the next one, and a replayed request is decided as a replay.

A starting hub (a host's first, or one restarted after a crash) takes the newest snapshot in
Redis, reads the stream from the id it covers, and appends `C_HOST_UP`; when that entry comes
back, it has everything before it: only then does it pass the hello gate, give its workers the
state (D_SYNC) and take their requests. While it catches up it delivers only messages (which
the workers drop if they have them already), never state events or replies.
"""
from __future__ import annotations

import asyncio
import logging
import pickle
import secrets
import socket

from chatstate.state import host_of_wid, wid_of
from cluster import ledger
from cluster.bridge import Bridge
from cluster.seat import Seat
from config import Config
from hub.hub import Hub
from hub.log import M_CHANMSG, M_REDACT, M_USERMSG
from hub.policy import REDACT_FOUND, Reply
from ipc import link
from ipc.child import Heartbeat

log = logging.getLogger("hubchat.hub")

CLUSTER = "cluster"  # in awaiting_hello until this hub has read the stream up to its own C_HOST_UP
REDIS = "redis"  # in _backed_up while Redis is unreachable: the links are not read
MESSAGES = frozenset((M_CHANMSG, M_USERMSG, M_REDACT))  # what a catching-up hub delivers
QUEUE_LIMIT = 2000  # entries waiting for Redis before the hub stops reading its workers


class _CatchingUp:
    """The router's stand-in while a hub replays the stream to where it joined: messages are
    delivered (a worker drops one it has), state events and replies are not (the workers get the
    whole state at the end, D_SYNC)."""

    def __init__(self, router) -> None:
        self.router = router

    def publish(self, seq: int, msgid: str, time: float, event: tuple) -> None:
        if event[0] in MESSAGES:
            self.router.publish(seq, msgid, time, event)


class ClusteredHub(Hub):
    def __init__(self, config: Config, control_sock: socket.socket, heartbeat: Heartbeat | None = None,
                 seat: Seat | None = None) -> None:
        super().__init__(config, control_sock, heartbeat)
        assert seat is not None
        self.seat = seat
        self.token = f"{seat.number}.{secrets.token_hex(4)}"
        self.ledger = ledger.Ledger()
        self.caught_up = False
        self.last_applied = "0-0"
        self.appended: dict[int, int] = {}  # items taken per link (the positions acks count)
        self.awaiting_hello.add(CLUSTER)
        self._handle = self._append  # the single host's _handle decides; this one appends
        self.bridge: Bridge | None = None
        self._catching_up = _CatchingUp(self.router)
        self.log._deliver[0] = self._catching_up.publish  # the router is the log's first reader
        self._early: list[tuple] = []

    # --- start ---------------------------------------------------------------------------------
    def start(self) -> None:
        super().start()
        self.bridge = Bridge(self.seat, self.token, self._on_entries, self._on_health,
                             hosts=lambda: self.ledger.hosts, snapshot=self._snapshot, on_drained=self._on_drained)
        asyncio.get_running_loop().create_task(self._join())

    async def _join(self) -> None:
        bridge = self.bridge
        taken = await bridge.newest_snapshot()
        from_id = "0-0"
        if taken is not None:
            from_id, blob = taken
            try:
                self._restore(blob)
                log.info("cluster: starting from the snapshot at %s (%d users, %d channels)", from_id,
                         len(self.state.users), len(self.state.channels))
            except Exception:
                log.exception("cluster: the snapshot at %s does not load; reading the whole stream", from_id)
                from_id = "0-0"
        self.last_applied = from_id
        bridge.add((None, 0, False, (ledger.C_HOST_UP, self.seat.number, self.seat.host_id, self.seat.boot)))
        for item in self._early:
            bridge.add(item)
        self._early.clear()
        bridge.start(from_id)

    def _restore(self, blob: bytes) -> None:
        data = pickle.loads(blob)
        self.state = self.policy.state = self.router.state = data["state"]
        self.policy.connections = data["connections"]
        self.policy.dormant = data["dormant"]
        self.policy.throttle = data["throttle"]
        self.log.last_us = data["last_us"]
        self.ledger = data["ledger"]
        if self.feed is not None:
            self.feed.adopt(self.state)

    def _snapshot(self) -> tuple[str, bytes] | None:
        if not self.caught_up:
            return None
        policy = self.policy
        return self.last_applied, pickle.dumps(
            {"state": self.state, "connections": policy.connections, "dormant": policy.dormant,
             "throttle": policy.throttle, "last_us": self.log.last_us, "ledger": self.ledger},
            protocol=pickle.HIGHEST_PROTOCOL)

    def finish(self) -> None:
        super().finish()

    def _add(self, item: tuple) -> None:
        if self.bridge is None or not self.bridge._tasks:
            self._early.append(item)
        else:
            self.bridge.add(item)

    # --- requests: to the stream ----------------------------------------------------------------
    def _append(self, wid: int, items: list[tuple]) -> None:
        gate, add = self.gate, self.bridge.add  # type: ignore[union-attr]
        replayed = wid in self.replaying
        position = self.appended.get(wid, 0)
        for item in items:
            position += 1
            op = item[0]
            if op in gate:
                try:
                    gate[op](wid, *item[1:])
                except Exception:
                    log.exception("hub failed to handle %r from worker %d", item[:1], wid)
                replayed = wid in self.replaying
                continue
            add((wid, position, replayed, item))
        self.appended[wid] = position
        bridge = self.bridge
        if len(bridge.queue) > QUEUE_LIMIT:  # type: ignore[union-attr]
            self._backpressure(REDIS, True)  # lifted when half of it is written (_on_drained)

    def _on_health(self, up: bool) -> None:
        backlog = self.bridge is not None and len(self.bridge.queue) > QUEUE_LIMIT
        self._backpressure(REDIS, not up or backlog)

    def _on_drained(self, waiting: int) -> None:
        if REDIS in self._backed_up and waiting <= QUEUE_LIMIT // 2:
            self._backpressure(REDIS, False)

    # --- decisions: from the stream -------------------------------------------------------------
    def _on_entries(self, entries: list) -> None:
        publish, router, the_log, decide = self.log.publish, self.router, self.log, self.ledger.decide
        number, token, policy = self.seat.number, self.token, self.policy
        for eid, entry in entries:
            the_log.prefix, the_log.seq = eid + ".", 0  # msgids from the entry: the same on every host
            try:
                decided = decide(policy, eid, entry)
            except Exception:  # a bug costs this entry, never the hub: the others are decided
                log.exception("hub failed to decide entry %s from host %s", eid, entry[0])
                continue
            if decided is None:
                continue  # a batch sent again after Redis went away mid-write
            if self.ledger.errors:
                for failed_eid, op, exc in self.ledger.errors:
                    log.error("hub failed to decide %r in entry %s: %r", op, failed_eid, exc)
                self.ledger.errors.clear()
            now = int(eid.partition("-")[0]) / 1000
            mine = entry[1] == token
            for wid, position, item, outputs in decided:
                try:
                    for out in outputs:
                        if type(out) is tuple:
                            publish(out, now)
                        elif type(out) is Reply:
                            if self.caught_up:
                                router.reply(out[0], out[1])
                        elif mine:
                            self._ask(out, wid, position)
                    if mine and item[0] in (link.R_KILL, link.R_CONNECT):
                        self._note(item, outputs)
                    if item[0] == ledger.C_HOST_GONE and item[1] == number and number not in self.ledger.hosts:
                        self._declared_gone()
                except Exception:
                    log.exception("hub failed to publish what %r decided", item[:1])
                if mine and wid is not None and position:
                    if position > self.handled.get(wid, 0):
                        self.handled[wid] = position
                    self.acks_due[wid] = self._ackable(wid) if self.deciding else self.handled[wid]
            self.last_applied = eid
            if mine and not self.caught_up:
                self._caught_up()
        self._schedule_flush()

    def _caught_up(self) -> None:
        self.caught_up = True
        self.log._deliver[0] = self.router.publish
        log.info("cluster: caught up with the stream at %s (%d users on %d hosts)", self.last_applied,
                 len(self.state.users), len(self.ledger.hosts))
        self.sync_needed = True
        self.awaiting_hello.discard(CLUSTER)
        if not self.awaiting_hello:
            self._release()

    def _declared_gone(self) -> None:
        """Another hub saw this host's lease lapse (it was cut off for longer than a lease): its
        users have quit everywhere, here too. It comes back as a new epoch of itself."""
        log.warning("cluster: this host was reported gone (cut off longer than its lease); its users quit; rejoining")
        self._add((None, 0, False, (ledger.C_HOST_UP, self.seat.number, self.seat.host_id, self.seat.boot)))

    # --- the single host's paths, through the stream ---------------------------------------------
    def hello(self, wid: int, snapshot: dict) -> None:
        """The state comes from the log, not from the workers: a worker's hello only says that its
        replica must be replaced (D_SYNC), now or once this hub has caught up."""
        if self.caught_up and not snapshot["users"] and wid in self.links:
            self._send(self.links[wid], (link.D_SYNC, self.state.snapshot()))
        else:
            self.sync_needed = True

    def _release(self) -> None:
        if self._hello_timer is not None:
            self._hello_timer.cancel()
            self._hello_timer = None
        if self.feed is not None:
            self.feed.adopt(self.state)
        if self.sync_needed:
            self._share_state()
        self._schedule_flush()
        parked, self.parked = self.parked, []
        for wid, items in parked:
            if wid in self.links:
                self._handle(wid, items)

    def _hello_overdue(self) -> None:
        self._hello_timer = None
        late = self.awaiting_hello - {CLUSTER}
        if late:
            log.warning("hub: workers %s did not say hello in 3s; carrying on without them", sorted(map(str, late)))
            self.awaiting_hello -= late
            if not self.awaiting_hello:
                self._release()

    def _on_lost(self, wid: int) -> None:
        if self.links.pop(wid, None) is None:
            return
        self._backpressure(wid, False)
        for table in (self.acks_due, self.acks_earned, self.handled_earned, self.deciding):
            table.pop(wid, None)
        self.replaying.discard(wid)
        if wid in self.awaiting_hello:
            self.awaiting_hello.discard(wid)
            if not self.awaiting_hello:
                self._release()
        log.info("hub: worker %d is gone; telling the cluster", wid)
        self._add((None, 0, False, (ledger.C_WORKER_LOST, wid)))

    def _store_hello(self, protocol: link.LinkProtocol, channels: dict, accounts: dict) -> None:
        if not self.store_greeted:
            self.store_greeted = True
            # Kept from before this host joined: offered to the cluster, which takes the first offer.
            self._add((None, 0, False, (ledger.C_SEED, accounts, channels)))
            log.info("hub: the store keeps %d accounts and %d channels; offered to the cluster",
                     len(accounts), len(channels))
        self.feed.attach(protocol)  # type: ignore[union-attr]
        if "store" in self.awaiting_hello:
            self.awaiting_hello.discard("store")
            if not self.awaiting_hello:
                self._release()

    def _found(self, fseq: int, context: tuple, found: tuple | None) -> None:
        """A REDACT's second step is decided by every host, so it goes through the stream too."""
        self._add((None, 0, False, (REDACT_FOUND, context, found)))
        wid, position = self.lookups.pop(fseq, (None, 0))
        deciding = self.deciding.get(wid)  # type: ignore[arg-type]
        if deciding is not None and position in deciding:
            deciding.remove(position)
            if not deciding:
                del self.deciding[wid]  # type: ignore[arg-type]
            self.acks_due[wid] = self._ackable(wid)  # type: ignore[index]

    def is_local(self, cid: int) -> bool:
        return host_of_wid(wid_of(cid)) == self.seat.number
