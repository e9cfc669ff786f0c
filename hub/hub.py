"""The hub process: the single authority over global state and the single sequencer.

Theory of operation
-------------------
Workers send requests; the hub handles them one at a time, in arrival order, on one event
loop: request -> policy -> publish. The policy (`hub/policy.py`, pure) decides what a request
causes: events, which it applies to the hub's `State`, and replies for the asking client. The
log (`hub/log.py`) numbers each event, stamps its msgid and the hub's time, and hands it to its
readers in that order; the worker links (`hub/routing.py`) are one: every worker applies the
state events to its replica (so every replica sees the same sequence), a channel message goes
to each worker with members (the origin included, so every member sees one order), a private
message to the target's worker. Replies go to the asking worker only, in the same order.

This class keeps what is not policy: the links, the hello gate after a restart, acks and
backpressure. A worker's link reaching EOF means the worker died: every client it held quits.
When any worker's link is backed up, the hub stops reading from all links until it drains,
so a slow worker slows the producers instead of growing the hub's memory.

Nothing is lost or doubled when the hub itself dies. A worker keeps each request until the hub
acknowledges it (D_ACK, cumulative, riding in a later frame), and the hub acknowledges only
after every frame those requests caused has reached the kernel on every link. A new hub
handles nothing until each linked worker has said hello (re-announcing its clients and the
latest hub time it saw), shares the rebuilt state (D_SYNC), and then takes the replayed
requests: state changes are idempotent, error replies to replays are not sent, and a replayed
message keeps its origin id, which is its msgid, so workers drop a copy they already delivered.
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections import deque

from config import Config
from ipc import control, link
from ipc.child import ChildProcess, Heartbeat
from hub.log import Log
from history.feed import S_ANSWER, S_DONE, S_FAIL, S_FOUND, S_HELLO, S_LOOKUP, S_MARKERS, HistoryFeed
from hub.policy import REDACT_FOUND, Ask, Policy, Reply
from hub.routing import LinkRouter
from chatstate.state import E_QUIT, State

log = logging.getLogger("hubchat.hub")

HELLO_WAIT = 3.0  # seconds a new link may take to say hello before the hub carries on without it
FEED_INTERVAL = 0.01  # seconds between the history store's batches
ACK_DELAY = 0.005  # seconds before acks go out in a frame of their own, when no traffic carries them
NOTED = frozenset((link.R_KILL, link.R_CONNECT))  # requests whose outcome the hub logs
STORE = "store"  # the history store's place in awaiting_hello and _backed_up, beside the workers' wids
STORE_BACKLOG = "store backlog"
METRICS_INTERVAL = 1.0  # seconds between copies of the hub's gauges into its row of the metrics board


class Hub(ChildProcess):
    label = "hub"
    metrics_row = None  # web.metrics.Row, given by the supervisor

    def __init__(self, config: Config, control_sock: socket.socket, heartbeat: Heartbeat | None = None) -> None:
        super().__init__(config, control_sock, heartbeat)
        self.state = State()
        self.policy = Policy(self.state, config.limits, history=config.history.enabled,
                             login_attempts=config.accounts.login_attempts)
        self.links: dict[int, link.LinkProtocol] = {}
        self.router = LinkRouter(self.state, self.links)
        self.log = Log(prefix=secrets.token_hex(3) + "-", readers=[self.router])
        self.clock = time.time
        self._backed_up: set[int] = set()
        # Delivery guarantees across a hub restart (see the module docstring).
        self.handled: dict[int, int] = {}  # items handled per link
        self.acks_due: dict[int, int] = {}  # link -> items handled this iteration
        self.acks_earned: dict[int, int] = {}  # link -> items whose effects were handed to the links
        self.handled_earned: dict[int, int] = {}  # the same, for D_HANDLED while acks wait for the store
        self._ack_timer_set = False
        self._flushes = 0
        self.awaiting_hello: set[int] = set()
        self.parked: list[tuple[int, list[tuple]]] = []
        self.replaying: set[int] = set()
        self.sync_needed = False
        self._flush_scheduled = False
        self._hello_timer: asyncio.TimerHandle | None = None
        self.control_handlers[control.LINK] = self.new_link
        self.control_handlers[control.STORE] = self.new_store_link
        self.gate = {link.R_HELLO: self.hello, link.R_REPLAY: self.replay}  # the restart protocol's own
        # History: the store's reader of the log, and the workers' acks it holds back (see _flush_all).
        self.feed: HistoryFeed | None = None
        self.store_link: link.LinkProtocol | None = None
        self.store_greeted = False
        self.acks_waiting: deque[tuple[int, dict[int, int]]] = deque()  # (feed item, {wid: count})
        self._feed_timer: asyncio.TimerHandle | None = None
        # Requests decided in two steps (REDACT): what the second causes must reach the store before
        # the request is acked, so its link is acked no further than the item before it until then.
        self.deciding: dict[int, list[int]] = {}  # wid -> positions on its link of requests in their first step
        self.lookups: dict[int, tuple[int, int]] = {}  # S_LOOKUP's fseq -> (wid, position)
        if config.history.enabled:
            self.feed = HistoryFeed(on_backlog=lambda on: self._backpressure(STORE_BACKLOG, on))
            self.log.add_reader(self.feed)
            self.awaiting_hello.add(STORE)  # its channels must be known before anyone joins one

    def reload(self, config: Config, fds: list[int]) -> None:
        super().reload(config, fds)
        self.policy.limits = config.limits
        self.policy.throttle.accounts.limit = self.policy.throttle.addresses.limit = config.accounts.login_attempts

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        if self.metrics_row is not None:
            self._publish_metrics()

    def _publish_metrics(self) -> None:
        """The hub's queue depth and the history store's lag, for /metrics (web/metrics.py)."""
        row = self.metrics_row
        row.put("hub_queue_bytes", sum(p.queued_bytes for p in self.links.values()))  # type: ignore[union-attr]
        row.put("hub_parked", sum(len(items) for _, items in self.parked))  # type: ignore[union-attr]
        if self.feed is not None:
            row.put("history_unfinished", len(self.feed.unsent))  # type: ignore[union-attr]
            row.put("history_entries", len(self.feed.entries))  # type: ignore[union-attr]
        asyncio.get_running_loop().call_later(METRICS_INTERVAL, self._publish_metrics)

    def finish(self) -> None:
        for protocol in self.links.values():
            protocol.close()
        if self.feed is not None and self.store_link is not None:
            self.feed.flush(self.clock())  # the store commits it before it stops (it is stopped after the hub)
            store_link, self.store_link = self.store_link, None  # let go of first: closing it is no loss
            store_link.close()

    def new_link(self, wid: int, fds: list[int]) -> None:
        # Nothing is handled until this worker has said hello: after a restart, its clients
        # must be known before anyone's (replayed) messages are routed.
        self.awaiting_hello.add(wid)
        if self._hello_timer is None:
            self._hello_timer = asyncio.get_running_loop().call_later(HELLO_WAIT, self._hello_overdue)
        asyncio.get_running_loop().create_task(self._attach(wid, fds[0]))

    async def _attach(self, wid: int, fd: int) -> None:
        protocol = link.LinkProtocol(
            lambda items: self._on_items(wid, items),
            on_lost=lambda: self._on_lost(wid),
            on_pause=lambda: self._backpressure(wid, True),
            on_resume=lambda: self._backpressure(wid, False),
            autoflush=False)
        self.links[wid] = protocol
        await link.open_link(fd, protocol)

    # --- the history store's link ---------------------------------------------------------------
    def new_store_link(self, fds: list[int]) -> None:
        if self.feed is None:
            os.close(fds[0])
            return
        if self.awaiting_hello and self._hello_timer is None:
            self._hello_timer = asyncio.get_running_loop().call_later(HELLO_WAIT, self._hello_overdue)
        asyncio.get_running_loop().create_task(self._attach_store(fds[0]))

    async def _attach_store(self, fd: int) -> None:
        protocol = link.LinkProtocol(
            lambda items: self._on_store_items(protocol, items),
            on_lost=lambda: self._on_store_lost(protocol),
            on_pause=lambda: self._backpressure(STORE, True),
            on_resume=lambda: self._backpressure(STORE, False),
            autoflush=False)
        self.store_link = protocol
        await link.open_link(fd, protocol)

    def _on_store_items(self, protocol: link.LinkProtocol, items: list[tuple]) -> None:
        feed = self.feed
        for item in items:
            op = item[0]
            if op == S_DONE:
                feed.finished(item[1])  # type: ignore[union-attr]
                self._release_acks()
            elif op == S_ANSWER:
                _, cid, query, rows = item
                if query[0] == "TARGETS":
                    rows = self.policy.display_targets(rows)
                self.router.reply(cid, (link.D_HISTORY, cid, query, rows))
            elif op == S_MARKERS:
                self.router.reply(item[1], (link.D_MARKREAD, *item[1:]))
            elif op == S_FOUND:
                self._found(*item[1:])
            elif op == S_FAIL:
                self.router.reply(item[1], (link.D_FAIL, *item[1:]))
            elif op == S_HELLO:
                self._store_hello(protocol, item[1], item[2])
        self._schedule_flush()

    def _store_hello(self, protocol: link.LinkProtocol, channels: dict[str, dict], accounts: dict[str, dict]) -> None:
        if not self.store_greeted:  # the first store this hub meets: the channels kept from the last run
            self.store_greeted = True
            for key, record in accounts.items():  # before anyone logs in: workers get them with D_SYNC
                self.state.accounts.setdefault(key, record)
            if accounts:
                self.sync_needed = True
                log.info("hub: the store keeps %d accounts", len(accounts))
            self.policy.dormant = {key: kept for key, kept in channels.items() if key not in self.state.channels}
            log.info("hub: the store keeps %d channels; %d come back when someone joins",
                     len(channels), len(self.policy.dormant))
        else:
            log.info("hub: the store is back; sending it the %d items it had not finished", len(self.feed.unsent))
        self.feed.attach(protocol)  # type: ignore[union-attr]
        if STORE in self.awaiting_hello:
            self.awaiting_hello.discard(STORE)
            if not self.awaiting_hello:
                self._release()
        elif self.sync_needed:  # a store later than HELLO_WAIT: the accounts reach the workers now
            self._share_state()

    def _on_store_lost(self, protocol: link.LinkProtocol) -> None:
        if self.store_link is not protocol:
            return
        self.store_link = None
        self.feed.detach()  # type: ignore[union-attr]
        self._backpressure(STORE, False)
        log.warning("hub: lost the history store; keeping what it has not committed until it is back")

    def _found(self, fseq: int, context: tuple, found: tuple | None) -> None:
        """The store's answer to a two-step request's first step: the policy decides the rest,
        and the request may be acked once the store has what that caused (with this iteration's
        batch)."""
        now = self.clock()
        try:
            self._publish(self.policy.decide((REDACT_FOUND, context, found), now), now)
        except Exception:  # a bug costs this REDACT, never its client's wait
            log.exception("hub failed to decide %r on the store's answer", context[:3])
            self.router.reply(context[0], (link.D_ANSWERED, context[0], "REDACT"))
        wid, position = self.lookups.pop(fseq, (None, 0))
        deciding = self.deciding.get(wid)
        if deciding is not None and position in deciding:
            deciding.remove(position)
            if not deciding:
                del self.deciding[wid]
            self.acks_due[wid] = self._ackable(wid)

    def _ackable(self, wid: int) -> int:
        """How many of a link's items may be acked: all it sent that were handled, up to the first
        request still in its first step."""
        deciding = self.deciding.get(wid)
        handled = self.handled.get(wid, 0)
        return min(handled, deciding[0] - 1) if deciding else handled

    def _release_acks(self) -> None:
        """Acks the store's progress allows: a request is acked once the store has what it caused."""
        waiting, done = self.acks_waiting, self.feed.done  # type: ignore[union-attr]
        while waiting and waiting[0][0] <= done:
            self.acks_earned.update(waiting.popleft()[1])

    def _on_items(self, wid: int, items: list[tuple]) -> None:
        if not (self.awaiting_hello or self.parked):
            self._handle(wid, items)
            return
        if items and items[0][0] == link.R_HELLO:
            self._handle(wid, items[:1])
            items = items[1:]
            self.awaiting_hello.discard(wid)
        if items:
            self.parked.append((wid, items))
        if not self.awaiting_hello:
            self._release()

    def _handle(self, wid: int, items: list[tuple]) -> None:
        """Request -> policy -> publish, for each item of one frame in order (`_publish`, inlined:
        this loop runs once per channel message)."""
        gate, decide, publish, reply = self.gate, self.policy.decide, self.log.publish, self.router.reply
        now = self.clock()  # one reading per frame: the log stamps each event past the last anyway
        replayed = wid in self.replaying
        position = self.handled.get(wid, 0)  # of the item on its link, counted from 1
        for item in items:
            op = item[0]
            position += 1
            try:
                if op in gate:
                    gate[op](wid, *item[1:])
                    replayed = wid in self.replaying
                    continue
                outputs = decide(item, now, replayed)
                for out in outputs:
                    if type(out) is tuple:  # an event (Reply and Ask are tuples of their own types)
                        publish(out, now)
                    elif type(out) is Reply:
                        reply(out[0], out[1])
                    else:
                        self._ask(out, wid, position)
                if op in NOTED:
                    self._note(item, outputs)
            except Exception:
                log.exception("hub failed to handle %r from worker %d", item[:2], wid)
        self.handled[wid] = position
        self.acks_due[wid] = self._ackable(wid) if self.deciding else position
        self._schedule_flush()

    def _release(self) -> None:
        """Every linked worker has said hello: share the rebuilt state, then handle what waited."""
        if self._hello_timer is not None:
            self._hello_timer.cancel()
            self._hello_timer = None
        if self.feed is not None:
            self.feed.adopt(self.state)  # the replica starts where the rebuilt state is
        if self.sync_needed:
            self._share_state()
        self._publish(self.policy.connection_count(), self.clock())  # the replicas' count is the dead hub's, or none
        self._schedule_flush()
        parked, self.parked = self.parked, []
        for wid, items in parked:
            if wid in self.links:
                self._handle(wid, items)

    def _share_state(self) -> None:
        """Every worker adopts the hub's state (D_SYNC), once it holds what the hellos (and the
        store) brought."""
        self.sync_needed = False
        sync = (link.D_SYNC, self.state.snapshot())
        for protocol in self.links.values():
            self._send(protocol, sync)

    def _hello_overdue(self) -> None:
        self._hello_timer = None
        if self.awaiting_hello:
            log.warning("hub: workers %s did not say hello in %.0fs; carrying on without them",
                        sorted(self.awaiting_hello), HELLO_WAIT)
            self.awaiting_hello.clear()
            self._release()

    # --- flushing and acknowledgements --------------------------------------------------
    def _send(self, protocol: link.LinkProtocol, item: tuple) -> None:
        protocol.send(item)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_all)

    def _flush_all(self) -> None:
        """One frame per link for this loop iteration, carrying the acks earlier ones earned.

        A worker forgets a request once acked, so an ack must never overtake what the request
        caused on *another* link. So a request is acked in a later iteration's frame, once every
        link has handed the frames it caused to the kernel (a socketpair then delivers them even
        if this process dies). Riding in the next frame costs no write of its own: a separate
        ack frame would wake every worker a second time per iteration."""
        self._flush_scheduled = False
        links = self.links
        earned = self.acks_earned
        if (earned or self.handled_earned) and all(p.closed or p.written for p in links.values()):
            for kind, counts in ((link.D_HANDLED, self.handled_earned), (link.D_ACK, earned)):
                for wid, count in counts.items():
                    protocol = links.get(wid)
                    if protocol is not None:
                        protocol.send((kind, count))
                counts.clear()
        feed = self.feed
        if feed is not None:
            # The store's batches go every FEED_INTERVAL, not every iteration: fewer, larger batches
            # for the store to number, commit and answer S_DONE for (the hub's CPU, measured at row 2,
            # did not go down with it: docs/performance.md).
            if feed.pending() and self._feed_timer is None:
                self._feed_timer = asyncio.get_running_loop().call_later(FEED_INTERVAL, self._flush_feed)
            if self.store_link is not None:
                self.store_link.flush()  # queries go at once
        for protocol in links.values():
            protocol.flush()
        if self.acks_due:
            if feed is None:
                earned.update(self.acks_due)
            else:  # once the store is done with the batch holding what they caused (S_DONE), not before
                self.acks_waiting.append((feed.fseq + feed.pending(), dict(self.acks_due)))
                self.handled_earned.update(self.acks_due)  # handled: said at once (D_HANDLED)
                self._release_acks()
            self.acks_due.clear()
        self._flushes += 1
        if (earned or self.handled_earned) and not self._ack_timer_set:
            self._arm_ack_timer()

    def _flush_feed(self) -> None:
        self._feed_timer = None
        self.feed.flush(self.clock())  # type: ignore[union-attr]
        if self.store_link is not None:
            self.store_link.flush()

    def _arm_ack_timer(self) -> None:
        self._ack_timer_set = True
        asyncio.get_running_loop().call_later(ACK_DELAY, self._ack_timer, self._flushes)

    def _ack_timer(self, flushes_then: int) -> None:
        """Acks still unsent after ACK_DELAY: flush for them alone, unless traffic is flowing
        (a frame will carry them as soon as the links have caught up)."""
        self._ack_timer_set = False
        if not (self.acks_earned or self.handled_earned):
            return
        if self._flushes == flushes_then:
            self._schedule_flush()
        else:
            self._arm_ack_timer()

    def _on_lost(self, wid: int) -> None:
        if self.links.pop(wid, None) is None:
            return
        self._backpressure(wid, False)
        self.acks_due.pop(wid, None)
        self.acks_earned.pop(wid, None)
        self.handled_earned.pop(wid, None)
        self.deciding.pop(wid, None)
        self.replaying.discard(wid)
        if wid in self.awaiting_hello:
            self.awaiting_hello.discard(wid)
            if not self.awaiting_hello:
                self._release()
        now = self.clock()
        outputs = self.policy.worker_lost(wid, now)
        log.info("hub: worker %d is gone; %d of its clients quit", wid, sum(out[0] == E_QUIT for out in outputs))
        self._publish(outputs, now)
        self._schedule_flush()

    def _backpressure(self, wid: int, backed_up: bool) -> None:
        was = bool(self._backed_up)
        (self._backed_up.add if backed_up else self._backed_up.discard)(wid)
        if was != bool(self._backed_up):
            for protocol in self.links.values():
                protocol.set_reading(not self._backed_up)

    # --- request -> policy -> publish ------------------------------------------------------
    def _publish(self, outputs: list, now: float) -> None:
        """Events to the log (numbered, stamped, read by every reader in order); replies to the
        asking client's worker, in the same order on its link."""
        publish, reply = self.log.publish, self.router.reply
        for out in outputs:
            if type(out) is tuple:
                publish(out, now)
            elif type(out) is Reply:
                reply(out.cid, out.item)
            else:
                self._ask(out)

    def _ask(self, ask: Ask, wid: int | None = None, position: int = 0) -> None:
        """A question for the store, after everything published before it. (The policy asks only
        history queries of a hub without a store, and answers everything else itself.)"""
        if self.feed is None:
            query = ask.item[-1]
            self.router.reply(ask.cid, (link.D_FAIL, ask.cid, "SEARCH" if query[0] == "SEARCH" else "CHATHISTORY",
                                        "MESSAGE_ERROR", (query[0], "History is off on this server")))
            return
        fseq = self.feed.ask(ask.kind, ask.item, self.clock())
        if ask.kind == S_LOOKUP and wid is not None:  # the request's second step comes with the answer
            self.lookups[fseq] = (wid, position)
            self.deciding.setdefault(wid, []).append(position)

    def _note(self, request: tuple, outputs: list) -> None:
        """Log what an operator wants to find later: kills and refused connections."""
        for out in outputs:
            if request[0] == link.R_KILL and out[0] == E_QUIT:
                log.info("hub: killed %s: %s", request[2], out[2])
            elif type(out) is Reply and out.item[0] == link.D_REFUSE:
                log.info("hub: refused a connection from %s: %s", request[2], out.item[2])

    # --- the hello gate and replays ------------------------------------------------------
    def hello(self, wid: int, snapshot: dict) -> None:
        """A worker (re)joined; after a hub restart it brings the clients it still holds."""
        connections = self.policy.connections
        for cid, ip in snapshot.get("connections", ()):
            if cid not in connections:
                connections.admit(cid, ip)
        self.log.resume_after(snapshot.get("hub_time", 0.0))  # server-time never goes backwards
        for key, record in snapshot.get("accounts", {}).items():
            self.state.accounts.setdefault(key, record)
        if not snapshot["users"]:
            if (self.state.users or self.state.accounts) and wid in self.links:  # a new worker's replica starts from the hub's state
                self._send(self.links[wid], (link.D_SYNC, self.state.snapshot()))
            return
        refused = self.state.merge(snapshot)
        for cid in refused:
            log.warning("hub: client %x lost its nick in the rebuild after a restart", cid)
        log.info("hub: worker %d re-announced %d clients", wid, len(snapshot["users"]))
        self.sync_needed = True  # sent to everyone once every worker has said hello

    def replay(self, wid: int, on: bool) -> None:
        """The worker is re-sending requests that the previous hub may already have handled."""
        (self.replaying.add if on else self.replaying.discard)(wid)
