"""A worker process: one asyncio loop serving many client sessions, linked to the hub.

Theory of operation
-------------------
The worker accepts from the shared listening socket (`Acceptor`), runs a `Session` per client,
and keeps a replica of the hub's `State`. Everything a client does that other clients could
see becomes a request to the hub (`request`); the hub's answers and events come back in hub
order through `_on_hub_items` and are applied to the replica before anything is written, so
local queries never contradict what the worker has already delivered.

If the hub dies the worker keeps its clients: requests are held (and clients' reading paused,
so the hold stays small) until the supervisor hands over a link to the new hub. Then the worker
re-announces its clients and channels (R_HELLO), replays every request the dead hub had not
acknowledged, and sends what it held. Replayed messages keep their origin ids, which the hub
makes their msgids, and `first_delivery` drops the copies of any that the dead hub had already
delivered. The hello also tells the new hub the latest time the dead one stamped on a message
here (`hub_time`), so that server-time keeps increasing.

The worker exits when told to (SIGTERM: every client gets `ERROR :Server shutting down`), and
when its supervisor is gone (control channel EOF, or the parent pid changes).
"""
from __future__ import annotations

import asyncio
import logging
import os
import select
import signal
import ssl
import socket
import time
from collections import deque

from config import Config
from ipc import control, link
from ipc.child import ChildProcess, Heartbeat
from chatstate.state import State
from config.tls import server_context
from ircproto.message import format_line
from workers import commands, events
from workers.acceptor import Acceptor
from workers.delivery import deliver_channel_run
from workers.glue import protocol_class
from workers.handlers import queries
from workers.session import (CLOSE_CONNECTION, NO_OUTPUT, PAUSE_READING, REQUEST, RESUME_READING, WAKE_AFTER,
                             Outbox, Session)
from workers.streams import Streams
from web import metrics
from web.http import WebServer
from web.websocket import WebSocketTransport

log = logging.getLogger("hubchat.worker")

SWEEP_INTERVAL = 1.0
SEEN_MESSAGES = 50_000  # message ids remembered at least, for de-duplication (far more than one restart replays)
SHUTDOWN_DRAIN = 2.0
OLD_LINK_DRAIN = 2.0  # seconds a dead hub's link may take to deliver its last frames and EOF


REPLAYED_WHEN_HANDLED = frozenset((link.R_CHANMSG, link.R_USERMSG))
MESSAGES = REPLAYED_WHEN_HANDLED  # the requests counted as messages in, for /metrics
STORE_QUESTIONS = frozenset((link.R_HISTORY, link.R_MARKREAD, link.R_REDACT))  # answered by the store, later


class RecentIds:
    """The last `keep` (up to twice that many) ids seen, answering "which of these are new?".

    Two generations of sets instead of a set plus an eviction queue: a batch is checked and
    remembered with C-level set operations, which matters at a million deliveries a second."""

    __slots__ = ("keep", "current", "previous")

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.current: set[str] = set()
        self.previous: set[str] = set()

    def add_new(self, ids: list[str]) -> list[str]:
        """The ids not seen before (nor earlier in `ids`), in order; all remembered from now on.
        When every one is new, the answer is `ids` itself (the common case costs no copy)."""
        current, previous = self.current, self.previous
        batch = set(ids)
        if len(batch) == len(ids) and batch.isdisjoint(current) and batch.isdisjoint(previous):
            current |= batch
        else:
            fresh = []
            for i in ids:
                if i not in current and i not in previous:
                    fresh.append(i)
                    current.add(i)
            ids = fresh
        if len(current) >= self.keep:
            self.previous, self.current = current, set()
        return ids


class Worker(ChildProcess):
    reads_state = staticmethod(commands.reads_state)
    # Counted in plain ints on the hot path; copied into the shared row once a second (_publish).
    registrations = commands_in = messages_in = deliveries = bytes_in = bytes_out = sendq_drops = 0

    def __init__(self, config: Config, wid: int, slot: int, listener: socket.socket,
                 control_sock: socket.socket, loads, boot_id: str, started_at: float,
                 tls_listener: socket.socket | None = None, heartbeat: Heartbeat | None = None,
                 tls_context: ssl.SSLContext | None = None, web_listener: socket.socket | None = None,
                 board: metrics.Board | None = None) -> None:
        super().__init__(config, control_sock, heartbeat)
        self.tls_listener = tls_listener
        self.web_listener = web_listener  # HTTP, or HTTPS with the TLS listener's certificate
        self.web: WebServer | None = None
        self.board = board
        self.row = board.row(slot) if board is not None else None
        self.by_transport = {"tcp": 0, "tls": 0, "websocket": 0}  # open sessions
        self.tls_context = tls_context  # the supervisor's last good one (the files may be broken now)
        self.label = f"worker {wid}"
        self.wid = wid
        self.slot = slot
        self.listener = listener
        self.loads = loads
        self.started_at = started_at
        self.server_name = config.server.name
        self.state = State(wid)
        self.sessions: dict[int, Session] = {}
        self.outbox = Outbox()  # what the sessions want done; drained at the end of every step (_drain)
        self.protocol_class = protocol_class(self)
        self.welcome_cache: tuple | None = None
        self.open_connections = 0  # sessions whose connection has not been lost yet
        self.streams: Streams | None = None
        self.hub: link.LinkProtocol | None = None
        self.held: list[tuple] = []  # requests made while there was no hub
        self.unacked: deque[tuple[int, tuple]] = deque()  # (number on this link, request) until acked
        self.sent = 0  # items sent on the current link
        self.handled = 0  # items of this link the hub has handled (D_HANDLED), stored or not
        self.replay: list[tuple[int, tuple]] = []  # requests the dead hub never acknowledged, by number on its link
        self.delivered_ids = RecentIds(SEEN_MESSAGES)  # to drop replayed duplicates
        self.hub_time = 0.0  # the time on the latest message from the hub, for the next hub's hello
        self.log_at: str | None = None  # with --cluster: the stream entry the replica is at, for the next hello
        self.link_hub: str | None = None  # with --cluster: the current link's hub, as its D_AT named it
        self._flush_scheduled = False
        self.whois_waiting: dict[tuple[int, int], tuple[str, asyncio.TimerHandle]] = {}  # (asker, target)
        self.clients_paused = False
        self._next_client = 0
        self._next_msgid = 0
        self._msgid_prefix = f"{boot_id}{wid:x}-"
        self._stopping = False
        self.control_handlers[control.HUB] = self.new_hub_link

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        self.listener.setblocking(False)
        self.streams = Streams() if hasattr(select, "epoll") else None  # plain TCP clients (Linux)
        self.acceptors = [Acceptor(self.listener, self.slot, self.loads, self._on_connection)]
        if self.tls_listener is not None:
            self.tls_listener.setblocking(False)
            self.acceptors.append(Acceptor(self.tls_listener, self.slot, self.loads,
                                           lambda conn, addr: self._on_connection(conn, addr, tls=True)))
        if self.web_listener is not None:
            self.web_listener.setblocking(False)
            self.web = WebServer(lambda: self.config.web, self.board, self.tls_context is not None,
                                 self._open_websocket)
            self.acceptors.append(Acceptor(self.web_listener, self.slot, self.loads, self._on_web_connection))
        for acceptor in self.acceptors:
            acceptor.start()
        asyncio.get_running_loop().call_later(SWEEP_INTERVAL, self._sweep)

    def on_terminate(self) -> None:
        self.shutdown(link.SHUTDOWN_REASON)

    def shutdown(self, reason: str) -> None:
        if self._stopping:
            return
        self._stopping = True
        log.info("worker %d stopping: %s, %d clients", self.wid, reason, len(self.sessions))
        for acceptor in self.acceptors:
            acceptor.stop()
        for s in list(self.sessions.values()):
            s.close(reason)
        if self.web is not None:
            self.web.close_all()
        self._drain()
        asyncio.get_running_loop().create_task(self._drain_and_stop())

    async def _drain_and_stop(self) -> None:
        deadline = time.monotonic() + SHUTDOWN_DRAIN
        while self.open_connections and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if self.hub is not None:
            self.hub.close()
        self.stop()

    # --- hub link ------------------------------------------------------------------------
    def new_hub_link(self, fds: list[int]) -> None:
        asyncio.get_running_loop().create_task(self._attach_hub(fds[0]))

    async def _attach_hub(self, fd: int) -> None:
        protocol = link.LinkProtocol(self._on_hub_items, on_lost=self._on_hub_lost,
                                     on_pause=lambda: self._pause_clients(True),
                                     on_resume=lambda: self._pause_clients(False))
        await link.open_link(fd, protocol)
        old = self.hub
        if old is not None and not old.closed:
            # The old hub is dead, but frames it wrote before dying may still be unread, and
            # their requests may be acked already: read up to its EOF, which comes after them.
            deadline = time.monotonic() + OLD_LINK_DRAIN
            while not old.closed and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
        if self.hub is not None:  # the EOF has not come (or has, and _on_hub_lost let it go)
            self._forget_hub()
        self.hub = protocol
        snapshot = self.state.snapshot(only_wid=self.wid)
        # Connections an earlier hub was told of; the ones still held are asked about below.
        held_connects = {item[1] for item in self.held if item[0] == link.R_CONNECT}
        snapshot["connections"] = [(s.cid, s.host) for s in self.sessions.values()
                                   if s.announced and s.cid not in held_connects]
        snapshot["hub_time"] = self.hub_time
        snapshot["log_at"] = self.log_at
        replay, self.replay = self.replay, []
        # With --cluster, the dead hub may have appended some of these: its token, and their
        # numbers on its link, let the next hub tell which (hub/clustered.py).
        snapshot["log_hub"], self.link_hub = self.link_hub, None
        snapshot["replayed"] = [n for n, _ in replay]
        protocol.send((link.R_HELLO, snapshot))  # always the first item on a link
        self.sent = 1
        held, self.held = self.held, []
        if replay:
            self.request((link.R_REPLAY, True))
            for _, item in replay:
                self.request(item)
            self.request((link.R_REPLAY, False))
        for item in held:
            self.request(item)
        self._pause_clients(False)
        if self.row is not None:
            self.row.put("linked", 1)
        if replay or held or self.sessions:  # a relink after a hub restart; the first link is routine
            log.info("worker %d linked to a new hub (%d clients; %d requests replayed, %d held sent)",
                     self.wid, len(self.sessions), len(replay), len(held))

    def _on_hub_lost(self) -> None:
        if self._stopping or self.hub is None or not self.hub.closed:
            return  # shutting down, or an old link that a new one already replaced
        self._forget_hub()

    def _forget_hub(self) -> None:
        log.warning("worker %d lost its hub link; holding requests until a new hub arrives", self.wid)
        if self.row is not None:
            self.row.put("linked", 0)  # at once: /healthz answers 503 from now on
        old, self.hub = self.hub, None
        if old is not None and not old.closed:
            old.close()
        # Whatever the dead hub did not acknowledge may have died with it: send it again.
        self.replay.extend(self._to_replay())
        self.unacked.clear()
        self.handled = 0
        self._pause_clients(True)

    def _to_replay(self) -> list[tuple]:
        sessions = self.sessions

        def waited_for(cid: int) -> tuple | None:
            s = sessions.get(cid)
            return s.asked if s is not None and s.waiting else None
        return to_replay(self.unacked, self.handled, waited_for, numbered=True)

    # --- hub traffic ---------------------------------------------------------------------
    def dispatch(self, s: Session, msg) -> None:
        self.commands_in += 1
        commands.dispatch(s, msg)

    def request(self, item: tuple) -> None:
        if item[0] in MESSAGES:
            self.messages_in += 1
        hub = self.hub
        if hub is not None and not hub.closed:
            hub.send(item)
            self.sent += 1
            self.unacked.append((self.sent, item))
        else:
            self.held.append(item)

    def acknowledged(self, count: int) -> None:
        unacked = self.unacked
        while unacked and unacked[0][0] <= count:
            unacked.popleft()

    def first_delivery(self, msgid: str) -> bool:
        """False for a message this worker has already delivered (replayed after a hub restart)."""
        return self.delivered_ids.add_new([msgid]) == [msgid]

    def _on_hub_items(self, items: list[tuple]) -> None:
        """Apply one frame from the hub in order; a run of messages to one channel goes as a batch."""
        handlers = events.HANDLERS
        run: list[tuple] = []
        outbox = self.outbox
        outbox.hub_turn = True
        outbox.now = time.monotonic()
        try:
            for item in items:
                if item[0] == link.D_CHANMSG:
                    if run and run[0][1] != item[1]:
                        self._deliver_run(run)
                        run = []
                    run.append(item)
                    continue
                if run:
                    self._deliver_run(run)
                    run = []
                try:
                    handlers[item[0]](self, *item[1:])
                except Exception:
                    log.exception("worker %d failed to apply %r", self.wid, item[:2])
                if outbox.effects:
                    self._drain()
            if run:
                self._deliver_run(run)
        finally:
            outbox.hub_turn = False
        self._drain()

    def _deliver_run(self, run: list[tuple]) -> None:
        self.hub_time = run[-1][5]  # the hub's times increase: the last is the latest
        try:
            deliver_channel_run(self, run[0][1], run)
        except Exception:
            log.exception("worker %d failed to deliver %d messages to %r", self.wid, len(run), run[0][1])

    def _pause_clients(self, paused: bool) -> None:
        if paused == self.clients_paused:
            return
        self.clients_paused = paused
        for s in self.sessions.values():
            if s.transport is not None and not s.closed and not s.reading_paused:
                if paused:
                    s.transport.pause_reading()
                else:
                    s.transport.resume_reading()

    # --- sessions ------------------------------------------------------------------------
    def reload(self, config: Config, fds: list[int]) -> None:
        super().reload(config, fds)
        if self.tls_listener is not None:
            try:
                self.tls_context = server_context(config)  # new connections get the new certificate
            except Exception as exc:
                log.error("worker %d kept its old TLS certificate: %s", self.wid, exc)

    def _on_connection(self, conn: socket.socket, addr: tuple, tls: bool = False) -> None:
        self._next_client += 1
        cid = self.wid << 32 | self._next_client
        host = addr[0] if isinstance(addr, tuple) else "localhost"
        if host.startswith(":"):
            host = "0" + host  # a source may not start with ':' on the wire
        session = self.protocol_class(self, self.outbox, cid, host, time.monotonic(), time.time())
        session.tls = tls
        if tls:
            session.transport_kind = "tls"
        if self.streams is not None and not tls:
            try:
                self.streams.open(conn, session)
            except OSError as exc:
                log.info("connection from %s failed before it started: %s", session.host, exc)
                self.loads[self.slot] -= 1
            return
        conn.setblocking(False)
        asyncio.get_running_loop().create_task(
            self._start_session(conn, session, self.tls_context if tls else None))

    def _on_web_connection(self, conn: socket.socket, addr: tuple) -> None:
        """An HTTP connection; it counts in `loads` like a client until it closes or, upgraded to a
        WebSocket, becomes a session (which then counts)."""
        host = addr[0] if isinstance(addr, tuple) else "localhost"
        if host.startswith(":"):
            host = "0" + host
        http = self.web.connection(host, self._web_closed)  # type: ignore[union-attr]
        if self.streams is not None and self.tls_context is None:
            try:
                self.streams.open(conn, http)  # type: ignore[arg-type]
            except OSError as exc:
                log.info("web connection from %s failed before it started: %s", host, exc)
                self.loads[self.slot] -= 1
            return
        conn.setblocking(False)
        asyncio.get_running_loop().create_task(self._start_session(conn, http, self.tls_context))

    def _web_closed(self, upgraded: bool) -> None:
        if not upgraded:
            self.loads[self.slot] -= 1

    def _open_websocket(self, transport: WebSocketTransport, host: str, trailing: bytes) -> None:
        self._next_client += 1
        cid = self.wid << 32 | self._next_client
        session = self.protocol_class(self, self.outbox, cid, host, time.monotonic(), time.time())
        session.tls = self.tls_context is not None
        session.transport_kind = "websocket"
        transport.start(session, trailing)
        self._drain()

    async def _start_session(self, conn: socket.socket, session, tls) -> None:
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                lambda: session, conn, ssl=tls, ssl_handshake_timeout=10 if tls else None)
        except (OSError, asyncio.TimeoutError) as exc:
            log.info("connection from %s failed before it started: %s", session.host, exc)
            self.loads[self.slot] -= 1
            conn.close()

    # --- driving the sessions: the transport's calls (workers/glue.py), the outbox, the timers ---
    def opened(self, s: Session, transport) -> None:
        s.transport = transport
        self.session_opened(s)

    def received(self, s: Session, data: bytes) -> None:
        self.bytes_in += len(data)
        s.receive(data, time.monotonic())
        self._drain()

    def lost(self, s: Session, exc: Exception | None) -> None:
        self.open_connections -= 1
        s.disconnected(exc)
        self._drain()

    def _drain(self) -> None:
        """Do what the sessions asked for in this step, in the order they asked; make sure their
        lines are written at the end of this iteration."""
        outbox = self.outbox
        effects = outbox.effects
        if effects:
            outbox.effects = []
            for s, kind, arg in effects:
                if kind is REQUEST:
                    self.request(arg)
                elif kind is CLOSE_CONNECTION:
                    self._close(s, *arg)
                elif s.transport is None or s.closed:
                    continue
                elif kind is PAUSE_READING:
                    s.transport.pause_reading()
                elif kind is RESUME_READING:
                    if not self.clients_paused:
                        s.transport.resume_reading()
                elif kind is WAKE_AFTER:
                    asyncio.get_running_loop().call_later(arg, self._unthrottle, s)
            if outbox.effects:  # closing one session can never ask for more, but be sure
                self._drain()
        if outbox.writers and not self._flush_scheduled:
            self.unflushed()

    def _unthrottle(self, s: Session) -> None:
        s.unthrottle(time.monotonic())
        self._drain()

    def _close(self, s: Session, reason: str, notify: bool) -> None:
        transport = s.transport
        if transport is not None:
            if s.outbuf and reason != "SendQ exceeded" and not transport.is_closing():
                transport.write(b"".join(s.outbuf))  # what was said before the goodbye
            s.outbuf = NO_OUTPUT
            if notify and not transport.is_closing():
                try:
                    transport.write(format_line(None, "ERROR", reason))
                except (RuntimeError, OSError):
                    pass
            if reason == "SendQ exceeded":
                transport.abort()  # a full queue will never drain; don't wait for it
            else:
                transport.close()
        self.session_closed(s, reason)

    def session_opened(self, s: Session) -> None:
        self.sessions[s.cid] = s
        self.by_transport[s.transport_kind] += 1
        self.open_connections += 1
        s.announced = True
        self.request((link.R_CONNECT, s.cid, s.host))  # the hub counts connections and may refuse
        if self.clients_paused:
            s.transport.pause_reading()  # type: ignore[union-attr]
        log.debug("client %x connected from %s", s.cid, s.host)

    def session_closed(self, s: Session, reason: str) -> None:
        if self.sessions.pop(s.cid, None) is not None:
            self.loads[self.slot] -= 1
            self.by_transport[s.transport_kind] -= 1
        if s.announced:
            self.request((link.R_QUIT, s.cid, reason))
        log.debug("client %x (%s) closed: %s", s.cid, s.nick, reason)

    def unflushed(self) -> list[Session]:
        """The sessions to flush at the end of this iteration (a flush is scheduled once per batch)."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush_output)
        return self.outbox.writers

    def flush_output(self) -> None:
        self._flush_scheduled = False
        if self.hub is not None:
            # Requests first: a message waiting for this iteration's writes to dozens of clients
            # would keep every one of its recipients waiting; each write keeps only its reader.
            self.hub.flush()
        outbox = self.outbox
        unflushed, outbox.writers = outbox.writers, []
        sendq = self.config.limits.sendq
        written = 0
        for s in unflushed:
            # One write per session per iteration (one syscall, not one per line).
            if s.closed or not s.outbuf:
                continue
            data = b"".join(s.outbuf)
            s.outbuf = NO_OUTPUT
            transport = s.transport
            transport.write(data)
            written += len(data)
            if transport.get_write_buffer_size() > sendq:
                self.sendq_drops += 1
                s.close("SendQ exceeded", notify=True)
        self.bytes_out += written
        self._drain()

    def next_msgid(self) -> str:
        self._next_msgid += 1
        return f"{self._msgid_prefix}{self._next_msgid:x}"

    def next_batch_ref(self) -> str:
        self._next_msgid += 1
        return f"{self._next_msgid:x}"

    # --- what handlers may ask of the worker (workers/server_view.py) ----------------------
    def idle_seconds(self, cid: int) -> int | None:
        s = self.sessions.get(cid)
        return int(time.time() - s.idle_since) if s is not None else None

    def expect_idle(self, asker: int, target: int, nick: str) -> None:
        timer = asyncio.get_running_loop().call_later(queries.IDLE_WAIT, self._idle_timeout, asker, target)
        self.whois_waiting[(asker, target)] = (nick, timer)

    def _idle_timeout(self, asker: int, target: int) -> None:
        self.idle_told(asker, target, None)
        self._drain()

    def idle_told(self, asker: int, target: int, idle: int | None) -> None:
        """Another worker told `target`'s idle time (None: it never did): answer the WHOIS."""
        waiting = self.whois_waiting.pop((asker, target), None)
        s = self.sessions.get(asker)
        if waiting is None or s is None:
            return
        nick, timer = waiting
        timer.cancel()
        queries.whois_answered(s, nick, target, idle)

    def run_blocking(self, then, fn, *args) -> None:
        def done(future: asyncio.Future) -> None:
            then(future.result())
            self._drain()
        asyncio.get_running_loop().run_in_executor(None, fn, *args).add_done_callback(done)

    def rehash(self) -> None:
        os.kill(os.getppid(), signal.SIGHUP)  # the supervisor re-reads the configuration for everyone

    # --- timers --------------------------------------------------------------------------
    def _sweep(self) -> None:
        if self._stopping:
            return
        now = time.monotonic()
        self.check_timeouts(now)
        if self.web is not None:
            self.web.sweep(now)
            self._drain()
        self._publish()
        asyncio.get_running_loop().call_later(SWEEP_INTERVAL, self._sweep)

    def _publish(self) -> None:
        """Copy the counters into this worker's shared row (web/metrics.py), for any worker's /metrics."""
        row = self.row
        if row is None:
            return
        for name in ("registrations", "commands_in", "messages_in", "deliveries", "bytes_in", "bytes_out",
                     "sendq_drops"):
            row.put(name, getattr(self, name))
        if self.web is not None:
            row.put("http_requests", self.web.requests)
            row.put("websockets_opened", self.web.websockets)
        for kind, count in self.by_transport.items():
            row.put("conn_" + kind, count)

    def check_timeouts(self, now: float) -> None:
        """Drop clients that never registered or stopped answering; PING the quiet ones."""
        self.outbox.now = now
        for s in list(self.sessions.values()):
            s.tick(now)
        self._drain()


def to_replay(unacked, handled: int, waited_for, numbered: bool = False) -> list:
    """What a dead hub did not acknowledge, less what it handled (D_HANDLED) and need not be
    done again: a state change it made would be made twice, after the fact (an AWAY then a
    BACK). Kept of those: the messages, which it may not have stored (the workers drop a copy
    by msgid), and a question for the store that its client still waits for the answer to
    (`waited_for(cid)` is the very request a session waits on, or None): the store answers
    after the hub has handled a question, and the dead hub may never have passed it on. A
    question already answered is not asked again, even while its client waits on a later
    one: that answer would be taken for the later question's. `numbered`: (number on the dead
    hub's link, request) pairs."""
    kept = []
    for n, item in unacked:
        if n > handled or item[0] in REPLAYED_WHEN_HANDLED:
            kept.append((n, item) if numbered else item)
        elif item[0] in STORE_QUESTIONS and waited_for(item[1]) is item:
            kept.append((n, item) if numbered else item)
    return kept
