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

Catching up
-----------
A starting hub (a host's first, or one restarted after a crash) reads the stream from a
snapshot to its own `C_HOST_UP`, and only then takes its workers' requests. What it decides on
the way may be news to its workers: a hub that dies has appended requests it never read back,
and the other hosts went on deciding. So every worker knows where its replica is in the stream:
after each batch of entries the hub sends `D_AT` (the last entry's id) behind what the batch
caused, in the same frame, so a worker that has the mark has everything before it. A worker's
hello names its mark; the restarted hub waits for the hellos, starts from the newest snapshot
at or before the oldest mark, and, while it catches up, keeps what it would send each link
(`_Kept`: events, messages, and replies to this host's clients) with the entry that caused it.
Once it has caught up (and every hello is in), each worker is sent what came after its own
mark, in stream order, and then the mark: every line its clients were owed reaches them once,
whether their own JOIN, another host's NICK or a message of the channel they joined. A worker
with no mark, or one older than the snapshot, adopts the state instead (D_SYNC): of what it
missed, only the QUITs of its own users that the log quit meanwhile are shown (they would
linger, unknown to the cluster); the rest changes silently. The hub says it is up only once
it holds its lease again (`Bridge.hold_lease`): a judge that read the C_HOST_UP of a host with
a lapsed lease would report it gone again.
Its clients' unacknowledged requests are then replayed, as on one host. Those the dead hub had
appended are decided already (and what they caused was in what the worker was sent): the hello
names that hub (its token, from D_AT) and the replayed requests' numbers on its link, and the
first run of them that it appended is acknowledged without being appended again (a JOIN then
PART decided twice would be shown twice). The rest are decided as replays: what already took
effect changes nothing.
"""
from __future__ import annotations

import asyncio
import logging
import pickle
import secrets
import socket
from collections import deque

from chatstate.state import E_QUIT, host_of_wid, wid_of
from cluster import ledger
from cluster.bridge import Bridge
from cluster.seat import Seat
from config import Config
from hub.hub import Hub
from hub.policy import REDACT_FOUND, Reply
from ipc import link
from ipc.child import Heartbeat

log = logging.getLogger("hubchat.hub")

CLUSTER = "cluster"  # in awaiting_hello until this hub has read the stream up to its own C_HOST_UP
REDIS = "redis"  # in _backed_up while Redis is unreachable: the links are not read
QUEUE_LIMIT = 2000  # entries waiting for Redis before the hub stops reading its workers
# Requests whose answer comes from the store, asked only by the hub that appended them: one that
# a dead hub appended was decided, but its question never asked, so its replay is not skipped.
STORE_QUESTIONS = frozenset((link.R_HISTORY, link.R_MARKREAD, link.R_REDACT))


class _Kept:
    """The router's links while the hub catches up: what it sends a link is kept, with the entry
    that caused it, until the workers' marks say who still needs it (`ClusteredHub._release`).
    Routing still happens at the entry, on the state as it was then."""

    def __init__(self, host: int) -> None:
        self.host = host
        self.eid = (0, 0)  # the entry being decided
        self.items: list[tuple[tuple[int, int], int | None, tuple]] = []  # (entry, wid or None: every link, item)

    def get(self, wid: int, default=None) -> "_KeptLink | None":
        return _KeptLink(self, wid) if host_of_wid(wid) == self.host else default

    def values(self) -> tuple["_KeptLink"]:
        return (_KeptLink(self, None),)


class _KeptLink:
    __slots__ = ("kept", "wid")

    def __init__(self, kept: _Kept, wid: int | None) -> None:
        self.kept, self.wid = kept, wid

    def send(self, item: tuple) -> None:
        self.kept.items.append((self.kept.eid, self.wid, item))


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
        self.kept: _Kept | None = _Kept(seat.number)  # None once the workers have been brought up to date
        self.router.links = self.kept
        self.marks: dict[int, tuple[int, int] | None] = {}  # wid -> the entry its replica is at (its hello's)
        self.announced: dict[int, list[int]] = {}  # wid -> the users its hello said its replica has
        # Replays of what a dead hub of this host had appended already (see _append):
        self.appended_before: dict[tuple[str, int], int] = {}  # (its token, wid) -> the last position it appended
        self.replays: dict[int, tuple[str | None, deque[int]]] = {}  # wid -> (the dead hub's token, numbers)
        self.joined_from = (0, 0)  # the snapshot's entry: what was kept starts after it
        self._hellos_in = asyncio.Event()
        self._early: list[tuple] = []
        self._rejoining = False

    # --- start ---------------------------------------------------------------------------------
    def start(self) -> None:
        super().start()
        self.bridge = Bridge(self.seat, self.token, self._on_entries, self._on_health,
                             hosts=lambda: self.ledger.hosts if self.caught_up else {}, snapshot=self._snapshot,
                             on_drained=self._on_drained, on_gap=self._on_gap)
        self.bridge.start_leases()
        asyncio.get_running_loop().create_task(self._join())

    async def _join(self) -> None:
        bridge = self.bridge
        await asyncio.sleep(0)  # the links the supervisor sent with the fork are taken first
        self._hello_check()
        await self._hellos_in.wait()  # their marks say which snapshot every worker can go on from
        marks = [mark for mark in self.marks.values() if mark is not None]
        taken = await bridge.newest_snapshot(min(marks) if marks else None)
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
        self.joined_from = ledger.entry_id(from_id)
        await bridge.hold_lease()  # up only with a lease: else a judge may read the C_HOST_UP first and report it
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

    def _snapshot(self) -> tuple[str, dict] | None:
        """What a snapshot holds, as it is now (the bridge pickles it in a forked child)."""
        if not self.caught_up:
            return None
        policy = self.policy
        return self.last_applied, {"state": self.state, "connections": policy.connections, "dormant": policy.dormant,
                                   "throttle": policy.throttle, "last_us": self.log.last_us, "ledger": self.ledger}

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
            if replayed and wid in self.replays and self._appended_before(wid, op):
                self.handled[wid] = self.acks_due[wid] = position  # all before it on this link: gate items
                continue
            add((wid, position, replayed, item))
        self.appended[wid] = position
        bridge = self.bridge
        if len(bridge.queue) > QUEUE_LIMIT:  # type: ignore[union-attr]
            self._backpressure(REDIS, True)  # lifted when half of it is written (_on_drained)

    def _appended_before(self, wid: int, op: str) -> bool:
        """Whether this replayed request is one the dead hub had appended (so it is decided, and
        what it caused was among what the worker was brought up to date with): the worker sends
        again what that hub never acknowledged, and a JOIN then PART decided once, then again as
        replays, would be shown twice. Only a first run of them is skipped (they are the start of
        the replay: that hub appended in order), and never a question for the store."""
        token, numbers = self.replays[wid]
        number = numbers.popleft() if numbers else None
        if number is not None and op not in STORE_QUESTIONS and number <= self.appended_before.get((token, wid), 0):
            return True
        del self.replays[wid]  # from here on every replay is decided, as a replay
        return False

    def _on_health(self, up: bool) -> None:
        backlog = self.bridge is not None and len(self.bridge.queue) > QUEUE_LIMIT
        self._backpressure(REDIS, not up or backlog)

    def _on_drained(self, waiting: int) -> None:
        if REDIS in self._backed_up and waiting <= QUEUE_LIMIT // 2:
            self._backpressure(REDIS, False)

    # --- decisions: from the stream -------------------------------------------------------------
    def _on_entries(self, entries: list) -> None:
        publish, router, the_log, decide = self.log.publish, self.router, self.log, self.ledger.decide
        number, token, policy, kept = self.seat.number, self.token, self.policy, self.kept
        applied = self.last_applied
        for eid, entry in entries:
            the_log.prefix, the_log.seq = eid + ".", 0  # msgids from the entry: the same on every host
            if kept is not None:
                kept.eid = ledger.entry_id(eid)
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
            if not self.caught_up and entry[0] == number and not mine:  # a dead hub of this host's
                before = self.appended_before
                for wid, position, _, _ in decided:
                    if wid is not None and position > before.get((entry[1], wid), 0):
                        before[(entry[1], wid)] = position
            for wid, position, item, outputs in decided:
                try:
                    for out in outputs:
                        if type(out) is tuple:
                            publish(out, now)
                        elif type(out) is Reply:
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
        if self.kept is None and self.last_applied != applied:
            mark = (link.D_AT, self.last_applied, token)  # behind what these entries caused, in the same frame
            for protocol in self.links.values():
                protocol.send(mark)
        self._schedule_flush()

    def _caught_up(self) -> None:
        self.caught_up = True
        log.info("cluster: caught up with the stream at %s (%d users on %d hosts)", self.last_applied,
                 len(self.state.users), len(self.ledger.hosts))
        self.awaiting_hello.discard(CLUSTER)
        if not self.awaiting_hello:
            self._release()

    def _on_gap(self, last: str, first: str) -> None:
        """Entries this hub never read are trimmed away (it was cut off, reported gone, and the
        others' snapshots moved on): its state can no longer follow the log's. It stops; the
        supervisor starts a new hub, which catches up from a snapshot and brings the workers
        to it (their marks are behind it: they adopt the state, and their users that the
        cluster quit meanwhile are quit here too)."""
        log.error("cluster: the stream now starts at %s, after %s, the last entry this hub read: what it "
                  "missed is gone; starting over from a snapshot", first, last)
        self.stop()

    def _declared_gone(self) -> None:
        """Another hub saw this host's lease lapse (it was cut off for longer than a lease): its
        users have quit everywhere, here too. It comes back as a new epoch of itself."""
        if self._rejoining:
            return  # a second report of the same epoch
        self._rejoining = True
        log.warning("cluster: this host was reported gone (cut off longer than its lease); its users quit; rejoining")
        asyncio.get_running_loop().create_task(self._rejoin())

    async def _rejoin(self) -> None:
        """Up again only once the lease is held again: a judge that read this C_HOST_UP while the
        lease was still lapsed would report the new epoch gone too, and quit the users who came
        since."""
        try:
            await self.bridge.hold_lease()  # type: ignore[union-attr]
            self._add((None, 0, False, (ledger.C_HOST_UP, self.seat.number, self.seat.host_id, self.seat.boot)))
        finally:
            self._rejoining = False

    # --- the single host's paths, through the stream ---------------------------------------------
    def hello(self, wid: int, snapshot: dict) -> None:
        """The state comes from the log, not from the workers: a worker's hello says where in the
        stream its replica is. Before this hub has caught up, that is where it will be brought on
        from; after, the worker adopts the state (a new worker; or one whose hello came too late)."""
        at = snapshot.get("log_at")
        self.marks[wid] = ledger.entry_id(at) if at else None
        self.announced[wid] = [user[0] for user in snapshot["users"]]
        if snapshot.get("replayed") and self.kept is not None:
            self.replays[wid] = (snapshot.get("log_hub"), deque(snapshot["replayed"]))
        if self.kept is None and wid in self.links:
            self._sync(self.links[wid], wid)
        self._hello_check(wid)

    def _hello_check(self, saying: int | None = None) -> None:
        """Whether every linked worker has said hello (`saying`: the one saying it now)."""
        if not any(type(w) is int and w != saying for w in self.awaiting_hello):
            self._hellos_in.set()

    def _sync(self, protocol: link.LinkProtocol, wid: int) -> None:
        """The worker adopts the state. Its users that the log has quit since its replica was
        made quit there first: D_SYNC keeps a worker's own users, and these would linger, and
        their neighbours would never see them go."""
        users = self.state.users
        for cid in self.announced.pop(wid, ()):
            if cid not in users:
                protocol.send((E_QUIT, cid, ledger.HOST_GONE_REASON, self.log.last_us / 1_000_000))
        self._send(protocol, (link.D_SYNC, self.state.snapshot()))
        self._send(protocol, (link.D_AT, self.last_applied, self.token))

    def _release(self) -> None:
        if self._hello_timer is not None:
            self._hello_timer.cancel()
            self._hello_timer = None
        if self.feed is not None:
            self.feed.adopt(self.state)
        kept, self.kept = self.kept, None
        self.router.links = self.links
        if kept is not None:
            for wid, protocol in self.links.items():
                self._bring_up_to_date(wid, protocol, kept)
        self._schedule_flush()
        parked, self.parked = self.parked, []
        for wid, items in parked:
            if wid in self.links:
                self._handle(wid, items)

    def _bring_up_to_date(self, wid: int, protocol: link.LinkProtocol, kept: _Kept) -> None:
        """What this hub decided while it caught up and the worker has not had: all of it after
        the worker's mark, in order; or, for a worker with no mark or one before the snapshot,
        the state."""
        mark = self.marks.get(wid)
        if mark is None or mark < self.joined_from:
            if mark is not None:
                log.warning("cluster: worker %d was at %s, before the snapshot this hub started from (%s); "
                            "it adopts the state, and what its clients missed is not shown to them",
                            wid, ledger.id_text(mark), ledger.id_text(self.joined_from))
            self._sync(protocol, wid)
            return
        sent = 0
        for eid, to, item in kept.items:
            if eid > mark and (to is None or to == wid):
                protocol.send(item)
                sent += 1
        self.announced.pop(wid, None)
        protocol.send((link.D_AT, self.last_applied, self.token))
        log.info("cluster: worker %d was at %s; sent it the %d items decided after that", wid,
                 ledger.id_text(mark), sent)

    def _hello_overdue(self) -> None:
        self._hello_timer = None
        late = self.awaiting_hello - {CLUSTER}
        if late:
            log.warning("hub: workers %s did not say hello in 3s; carrying on without them", sorted(map(str, late)))
            self.awaiting_hello -= late
            self._hello_check()
            if not self.awaiting_hello:
                self._release()

    def _on_lost(self, wid: int) -> None:
        if self.links.pop(wid, None) is None:
            return
        self._backpressure(wid, False)
        for table in (self.acks_due, self.acks_earned, self.handled_earned, self.deciding):
            table.pop(wid, None)
        self.replaying.discard(wid)
        self.marks.pop(wid, None)
        self.announced.pop(wid, None)
        self.replays.pop(wid, None)
        if wid in self.awaiting_hello:
            self.awaiting_hello.discard(wid)
            self._hello_check()
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
