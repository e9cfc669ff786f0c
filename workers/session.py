"""One client connection as a sans-I/O state machine: bytes and the hub's answers in, an outbox out.

Theory of operation
-------------------
A `Session` never touches a socket, the link, a timer or the clock. Its inputs are the bytes
the client sent (`receive(data, now)`), the hub's items as the worker applies them (`resume`,
`registration_granted`, `barrier_came_back`, `write`, `reply`, ...), and the time
(`receive`, `tick` and `unthrottle` are given `now`; for the hub's items the driver's clock
reading of the step is in `Outbox.now`). Its outputs go to the worker's `Outbox`: the
client's lines (`outbuf`, with the session listed once in `Outbox.writers`), and requests for
the hub, "close with this reason", "pause/resume reading" and "wake me after this delay"
(`Outbox.effects`, in order). The worker (workers/worker.py) drives it: it feeds the bytes,
drains the outbox to the transport and the hub link at the end of every step, and runs the
timers.

Its state is two small tables, in the style of h11's `_state.py`: a transition that is not in
a table raises `IllegalTransition`.

- `phase`, the lifecycle: CONNECTED -> NEGOTIATING (CAP LS/REQ before registration, until
  CAP END) -> CONNECTED -> REGISTERING (NICK and USER are in: the hub is asked for the nick)
  -> REGISTERED (the hub granted it; a refused nick goes back to CONNECTED), and CLOSED from
  anywhere. CLOSED is final: every input after it is ignored.
- `holding`, what holds the client's next line: READY; AWAITING_HUB (registration, a nick
  change, QUIT, WHOIS of a user on another worker, an OPER check); AWAITING_BARRIER (a query
  or a labelled command waits for its barrier, below); THROTTLED (fakelag).

Lines that arrive while input is held wait in `backlog`, in order, and are handled when the
hold ends, so a client's commands always take effect in the order it sent them. A long
backlog pauses reading from the socket, so a client cannot grow it without bound and a
flooder is slowed, not dropped.

Answers keep the order of the commands (`ReplyOrder`, workers/order.py): a local answer that
would overtake what the hub still owes this client for an earlier command is held behind a
barrier and written when the barrier comes back; the hub's own answers arrive in order
(`Outbox.hub_turn` says when the worker is applying them).

Queries are answered from the worker's replica, but only after a *barrier* has been through
the hub and back: by then the replica holds every event the hub had decided before the query
reached it. So "JOIN #a" then "WHO #a" shows the client in #a, and once bob has seen his own
306, alice's WHOIS (on another worker) shows him away, exactly as on a one-process server.
The cost is one hub round trip per query; messages never wait for one. `fresh` records that
a barrier came back since the last line was handled, so the next query goes ahead.

IRCv3 `labeled-response`: while a labelled command runs, everything that answers it (numerics,
and the events that echo the client's own action) goes through `reply` into `captured`; when
the command is finished (nothing held for the hub, and a barrier back if anything was sent)
the capture leaves as an ACK, one labelled line, or a `labeled-response` batch. Relayed traffic
from other clients is written directly meanwhile, never mistaken for the answer.

Output is collected per session during one loop iteration and handed to the transport in one
write at the end of it (`Worker.flush_output`): a channel with many messages a second costs
one send per member per iteration instead of one per message. Nothing ever awaits a slow
client: once more than `limits.sendq` bytes are queued for it, it is dropped with
`ERROR :SendQ exceeded` and everybody else carries on.
"""
from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

from ipc.link import R_BARRIER
from ircproto.caps import ACCOUNT_TAG, LABELED_RESPONSE, MESSAGE_TAGS, SERVER_TIME
from ircproto.flood import FakeLag
from ircproto.numerics import with_text
from ircproto.framing import LineBuffer, ReadQExceeded
from ircproto.message import EmptyMessage, ProtocolError, escape_tag_value, format_line, parse
from workers.order import ReplyOrder

from workers.server_view import ServerView

if TYPE_CHECKING:
    from ircproto.message import Message

BACKLOG_PAUSE = 64  # lines held (waiting for the hub, or slowed by fakelag) before reading is paused
MAX_LABEL = 64  # bytes of a labeled-response label (the IRCv3 limit)
TAG_TIME, TAG_MSGID, TAG_ACCOUNT = 1, 2, 4  # bits of `tag_mode`: server-time, message-tags (msgid and client
#   tags), account-tag
NO_BACKLOG: tuple = ()  # shared stand-ins for what most sessions never hold
NO_CAPS: frozenset[str] = frozenset()
NO_CAPTURE: list[bytes] = []  # never appended to: `reply` captures only while a label is set
NO_OUTPUT: list[bytes] = []  # never appended to: a session has a list of its own only while output waits

# --- the lifecycle (`phase`) ----------------------------------------------------------------
CONNECTED = "CONNECTED"  # collecting NICK and USER
NEGOTIATING = "NEGOTIATING"  # CAP LS or REQ came before registration: it waits for CAP END
REGISTERING = "REGISTERING"  # the hub is asked for the nick
REGISTERED = "REGISTERED"
CLOSED = "CLOSED"

CAP_BEGIN, CAP_END, REGISTER, GRANTED, REFUSED, CLOSE = (
    "cap begin", "cap end", "register", "granted", "refused", "close")

PHASES: dict[tuple[str, str], str] = {
    (CONNECTED, CAP_BEGIN): NEGOTIATING,
    (NEGOTIATING, CAP_BEGIN): NEGOTIATING,  # CAP LS, then CAP REQ
    (NEGOTIATING, CAP_END): CONNECTED,
    (CONNECTED, REGISTER): REGISTERING,
    (REGISTERING, GRANTED): REGISTERED,
    (REGISTERING, REFUSED): CONNECTED,  # the nick is taken: the client may try another
    # After a hub restart a registration is replayed and answered again: the new hub's grant
    # stands (it now holds the nick for this client), and a second refusal changes nothing.
    (CONNECTED, GRANTED): REGISTERED,
    (NEGOTIATING, GRANTED): REGISTERED,
    (CONNECTED, REFUSED): CONNECTED,
    (NEGOTIATING, REFUSED): NEGOTIATING,
    (CONNECTED, CLOSE): CLOSED,
    (NEGOTIATING, CLOSE): CLOSED,
    (REGISTERING, CLOSE): CLOSED,
    (REGISTERED, CLOSE): CLOSED,
}

# --- what holds input (`holding`) ----------------------------------------------------------------
READY = "READY"
AWAITING_HUB = "AWAITING_HUB"  # until the hub (or the worker, for WHOIS and OPER) answers
AWAITING_BARRIER = "AWAITING_BARRIER"  # until the barrier `sync_token` comes back
THROTTLED = "THROTTLED"  # fakelag: until the driver wakes the session

ASK, ANSWERED, BARRIER, BARRIER_BACK, THROTTLE, UNTHROTTLE = (
    "ask", "answered", "barrier", "barrier back", "throttle", "unthrottle")

HOLDS: dict[tuple[str, str], str] = {
    (READY, ASK): AWAITING_HUB,
    (AWAITING_HUB, ANSWERED): READY,
    # An answer replayed after a hub restart, when nothing waits for it any more, holds nothing.
    (READY, ANSWERED): READY,
    (AWAITING_BARRIER, ANSWERED): AWAITING_BARRIER,
    (THROTTLED, ANSWERED): THROTTLED,
    (READY, BARRIER): AWAITING_BARRIER,
    (AWAITING_BARRIER, BARRIER_BACK): READY,
    (READY, THROTTLE): THROTTLED,
    (THROTTLED, UNTHROTTLE): READY,
}

# --- the outbox's effects: (session, kind, argument) ----------------------------------------
REQUEST = "request"  # argument: the item for the hub
CLOSE_CONNECTION = "close"  # argument: (reason, whether to send ERROR)
PAUSE_READING = "pause"  # argument: None
RESUME_READING = "resume"  # argument: None (the worker resumes only while it has a hub)
WAKE_AFTER = "wake"  # argument: seconds until `unthrottle` is due


class SessionServer(ServerView, Protocol):
    """The worker as its sessions see it: what handlers see, and the command table."""

    def dispatch(self, s: "Session", msg: "Message") -> None: ...

    def reads_state(self, msg: "Message") -> bool: ...


class IllegalTransition(Exception):
    """An input that the session's state does not allow (a bug in whoever drives it)."""

    def __init__(self, table: str, state: str, event: str) -> None:
        super().__init__(f"{table}: no transition from {state} on {event!r}")
        self.state, self.event = state, event


class Outbox:
    """What the sessions of one worker want done, and the two facts its driver tells them.

    One per worker, shared by its sessions (a session costs one reference to it). The driver
    drains it at the end of every step (feeding bytes, applying an item from the hub, a timer)."""

    __slots__ = ("effects", "writers", "hub_turn", "now")

    def __init__(self) -> None:
        self.effects: list[tuple[Session, str, Any]] = []
        self.writers: list[Session] = []  # sessions with lines in `outbuf`, to be written in one go
        self.hub_turn = False  # applying the hub's items: what sessions write now is in hub order
        self.now = 0.0  # the driver's clock reading for the step it runs (time.monotonic)


def add_tag(line: bytes, tag: bytes) -> bytes:
    """Put one more tag on a rendered line."""
    return b"@" + tag + (b";" + line[1:] if line[:1] == b"@" else b" " + line)


class Session(ReplyOrder):
    # One per connection, tens of thousands per worker: no __dict__.
    __slots__ = ("server", "outbox", "cid", "host", "nick", "user", "realname", "password", "caps",
                 "tag_mode", "phase", "holding", "sync_token", "fresh", "label", "captured", "idle_since",
                 "announced", "lines_before_registration", "backlog", "fakelag", "transport", "outbuf",
                 "lines", "connected_at", "last_seen", "ping_sent_at", "reading_paused", "join_markers",
                 "account", "sasl", "tls", "asked", "transport_kind", "certfp")

    def __init__(self, server: SessionServer, outbox: Outbox, cid: int, host: str, now: float,
                 idle_since: float) -> None:
        """`now` is the driver's monotonic clock; `idle_since` the wall clock (WHOIS shows it)."""
        ReplyOrder.__init__(self)
        self.server = server
        self.outbox = outbox
        self.cid = cid
        self.host = host
        self.nick: str | None = None
        self.user: str | None = None
        self.realname = ""
        self.password: str | None = None
        self.caps: frozenset[str] | set[str] = NO_CAPS
        self.tag_mode = 0  # TAG_TIME | TAG_MSGID, from the capabilities
        self.phase = CONNECTED
        self.holding = READY
        self.sync_token = 0  # the barrier AWAITING_BARRIER waits for
        self.fresh = False  # a barrier came back since the last line: the replica is new enough for a query
        self.label: str | None = None
        self.captured: list[bytes] = NO_CAPTURE  # a list of its own only while a labelled command runs
        self.idle_since = idle_since  # last PRIVMSG, NOTICE or TAGMSG, for WHOIS
        self.announced = False  # the worker told the hub of this connection, so it must hear when it closes
        self.lines_before_registration = 0
        self.backlog: deque[bytes] | tuple = NO_BACKLOG  # lines received and not yet handled, in order
        self.fakelag: FakeLag | None = None
        self.transport: Any = None  # the driver's, for this connection; the session never calls it
        self.outbuf: list[bytes] = NO_OUTPUT  # lines written during this loop iteration, sent by the worker
        self.lines = LineBuffer()
        self.connected_at = now
        self.last_seen = now
        self.ping_sent_at: float | None = None
        self.reading_paused = False  # the session asked for its reading to be paused
        self.join_markers: dict[str, int | None] | None = None  # read markers for the JOIN bursts to come
        self.account = ""  # the account logged in to (its display name), as the hub said (D_LOGIN, E_LOGIN)
        self.sasl: Any = None  # ircproto.sasl.Authentication, from the first AUTHENTICATE
        self.tls = False  # the connection is over TLS (SASL PLAIN is then allowed from anywhere)
        self.asked: tuple | None = None  # the last request sent with ask_hub (replayed only if still waited on)
        self.transport_kind = "tcp"  # "tcp", "tls" or "websocket" (wss too): for metrics and WHOIS
        self.certfp: str | None = None  # the TLS client certificate's SHA-256, hex (SASL EXTERNAL)

    # --- the state tables ---------------------------------------------------------------
    def _phase_to(self, event: str) -> None:
        try:
            self.phase = PHASES[self.phase, event]
        except KeyError:
            raise IllegalTransition("phase", self.phase, event) from None

    def _hold_to(self, event: str) -> None:
        try:
            self.holding = HOLDS[self.holding, event]
        except KeyError:
            raise IllegalTransition("holding", self.holding, event) from None

    @property
    def registered(self) -> bool:
        return self.phase is REGISTERED

    @property
    def closed(self) -> bool:
        return self.phase is CLOSED

    @property
    def cap_negotiating(self) -> bool:
        return self.phase is NEGOTIATING

    @property
    def waiting(self) -> bool:
        """Input is held until an answer (from the hub, or the worker) comes."""
        return self.holding is AWAITING_HUB

    @property
    def syncing(self) -> bool:
        """Input is held until the barrier `sync_token` comes back."""
        return self.holding is AWAITING_BARRIER

    # --- inputs from the client and the clock ---------------------------------------------
    def receive(self, data: bytes, now: float) -> None:
        """Bytes from the client, at `now`."""
        if self.phase is CLOSED:
            return
        self.last_seen = now
        self.ping_sent_at = None  # any input proves the client is alive
        try:
            lines = self.lines.feed(data)
        except ReadQExceeded:
            self.close("Input line too long (no line ending)")
            return
        if lines:
            if self.backlog is NO_BACKLOG:
                self.backlog = deque(lines)
            else:
                self.backlog.extend(lines)  # type: ignore[union-attr]
        self._process(now)

    def disconnected(self, exc: Exception | None) -> None:
        """The connection is gone (the driver saw it end, with this error or None)."""
        self.close(f"Read error: {exc.strerror or exc}" if isinstance(exc, OSError) else "Connection closed")

    def tick(self, now: float) -> None:
        """The clock moved on: drop a client that never registered or stopped answering, PING a quiet one."""
        if self.phase is CLOSED:
            return
        limits = self.server.config.limits
        if self.phase is not REGISTERED:
            if now - self.connected_at > limits.registration_timeout:
                self.close("Registration timed out")
        elif self.ping_sent_at is not None:
            if now - self.ping_sent_at > limits.ping_timeout:
                self.close(f"Ping timeout: {int(now - self.last_seen)} seconds")
        elif now - self.last_seen > limits.ping_interval:
            name = self.server.server_name
            self.send("PING", name, source=name)
            self.ping_sent_at = now

    def unthrottle(self, now: float) -> None:
        """The fakelag delay asked for (WAKE_AFTER) is over."""
        if self.phase is CLOSED:
            return
        self._hold_to(UNTHROTTLE)
        self._process(now)

    # --- input ---------------------------------------------------------------------------
    def handle_line(self, line: bytes) -> None:
        try:
            msg = parse(line)
        except EmptyMessage:
            return
        except ProtocolError as err:
            self.numeric_as_given(err.numeric, err.text)
            return
        if not line.isascii() and not _is_utf8(line):  # UTF8ONLY: never relay text we cannot read
            self.send("FAIL", msg.command, "INVALID_UTF8", "Message rejected, your message contained invalid UTF-8")
            return
        label = msg.tags.get("label") if LABELED_RESPONSE in self.caps else None
        if label and len(label) > MAX_LABEL:
            label = None
        # A query waits until the replica holds what the hub had decided; a labelled command
        # until the hub has answered everything before it, which must stay out of its batch.
        if (not self.fresh and self.server.reads_state(msg)) or \
                (label and not self.may_answer_now):
            self._hold_first(line)  # handled once the barrier is back
            self._barrier()
            return
        self.fresh = False
        if label:
            self.label = label
            self.captured = []
        self.server.dispatch(self, msg)
        self._settle()

    def _hold_first(self, line: bytes) -> None:
        if self.backlog is NO_BACKLOG:
            self.backlog = deque()
        self.backlog.appendleft(line)  # type: ignore[union-attr]

    def request(self, item: tuple) -> None:
        """Send a request to the hub; local answers and queries after it wait until it has been handled."""
        self.send_to_hub(item)
        self.in_flight = True

    def send_to_hub(self, item: tuple) -> None:
        """Send an item through the hub that answers nothing this client waits for in order
        (a question to another worker): it does not hold local answers."""
        self.outbox.effects.append((self, REQUEST, item))

    def ask_hub(self, request: tuple) -> None:
        """Send a request and hold further input until the hub answers it."""
        self.asked = request
        self.request(request)
        self._hold_to(ASK)

    def await_answer(self) -> None:
        """Hold further input until `resume` (an answer the worker waits for: WHOIS's idle time, OPER)."""
        self.asked = None
        self._hold_to(ASK)

    def resume(self) -> None:
        """The answer came: carry on with the held lines."""
        if self.phase is CLOSED:
            return
        self.asked = None
        self._hold_to(ANSWERED)
        self._settle()
        self._process(self.outbox.now)

    # --- registration (the handlers decide when; the table says whether) -------------------
    def cap_began(self) -> None:
        """CAP LS or REQ before registration: registration waits for CAP END."""
        self._phase_to(CAP_BEGIN)

    def cap_ended(self) -> None:
        self._phase_to(CAP_END)

    def ask_to_register(self, request: tuple) -> None:
        """NICK and USER (and CAP END) are in: ask the hub for the nick, holding input until it answers."""
        self._phase_to(REGISTER)
        self.ask_hub(request)

    def registration_granted(self) -> None:
        self._phase_to(GRANTED)

    def registration_refused(self) -> None:
        """The nick was taken: the client is nameless again and may try another."""
        self._phase_to(REFUSED)
        self.nick = None

    # --- barriers --------------------------------------------------------------------------
    def _barrier(self) -> None:
        """Hold input until the hub has handled everything before this point."""
        self.sync_token = self.new_barrier()
        self._send_barrier(self.sync_token)
        self._hold_to(BARRIER)

    def _send_barrier(self, token: int) -> None:
        self.send_to_hub((R_BARRIER, self.cid, token))

    def barrier_came_back(self, token: int) -> None:
        if self.phase is CLOSED:
            return
        for line in self.barrier_back(token):
            self.write(line)
        if self.holding is AWAITING_BARRIER and token >= self.sync_token:
            self._hold_to(BARRIER_BACK)
            self.fresh = True
            self._settle()
            self._process(self.outbox.now)

    def _settle(self) -> None:
        """Finish a labelled command once everything it caused has come back from the hub."""
        if self.label is None or self.holding is not READY or self.phase is CLOSED:
            return
        if self.in_flight:
            self._barrier()
            return
        server_name = self.server.server_name
        label = b"label=" + escape_tag_value(self.label).encode()
        captured, self.label, self.captured = self.captured, None, NO_CAPTURE
        if not captured:
            self._answer(add_tag(format_line(server_name, "ACK"), label))
        elif len(captured) == 1:
            self._answer(add_tag(captured[0], label))
        else:
            ref = self.server.next_batch_ref()
            self._answer(add_tag(format_line(server_name, "BATCH", "+" + ref, LABELED_RESPONSE), label))
            tag = b"batch=" + ref.encode()
            for line in captured:
                self._answer(add_tag(line, tag))
            self._answer(format_line(server_name, "BATCH", "-" + ref))

    def _process(self, now: float) -> None:
        """Handle held lines in order until the session must wait (for the hub, a barrier, or fakelag)."""
        outbox = self.outbox
        hub_turn, outbox.hub_turn = outbox.hub_turn, False  # what handlers write are local answers
        try:
            while self.backlog and self.holding is READY and self.phase is not CLOSED:
                if self.phase is REGISTERED and self.server.config.server.flood_control and self._must_wait(now):
                    break
                self.handle_line(self.backlog.popleft())  # type: ignore[union-attr]
        finally:
            outbox.hub_turn = hub_turn
        if not self.backlog:
            self.backlog = NO_BACKLOG  # an empty deque is 600 bytes; most sessions hold nothing
        if self.phase is CLOSED:
            return
        if len(self.backlog) > BACKLOG_PAUSE and not self.reading_paused:
            self.reading_paused = True  # the client is ahead of us: stop reading, so it is slowed
            outbox.effects.append((self, PAUSE_READING, None))
        elif not self.backlog and self.reading_paused:
            self.reading_paused = False
            outbox.effects.append((self, RESUME_READING, None))

    def _must_wait(self, now: float) -> bool:
        if self.fakelag is None:
            limits = self.server.config.limits
            self.fakelag = FakeLag(limits.flood_burst, limits.flood_rate, now)
        delay = self.fakelag.delay(now)
        if delay:
            self._hold_to(THROTTLE)
            self.outbox.effects.append((self, WAKE_AFTER, delay))
        return bool(delay)

    # --- output --------------------------------------------------------------------------
    @property
    def display_nick(self) -> str:
        return self.nick or "*"

    @property
    def prefix(self) -> str:
        return f"{self.nick}!{self.user}@{self.host}"

    def write(self, data: bytes) -> None:
        """Queue a line; the worker sends each session's lines of one loop iteration at once.
        (Inlined in workers/delivery.py deliver_channel_run: keep the two alike.)"""
        if self.phase is CLOSED:
            return
        if self.outbuf is NO_OUTPUT:
            self.outbox.writers.append(self)
            self.outbuf = [data]
        else:
            self.outbuf.append(data)

    def reply(self, data: bytes) -> None:
        """Write a line that answers this client's own command (labelled, if it asked for that).

        The hub's answers arrive in order, so while the worker applies them they go straight
        out; a local answer may have to wait for the hub to answer earlier commands (order.py)."""
        if self.label is not None:
            self.captured.append(data)
        elif self.outbox.hub_turn:
            self.write(data)
        else:
            self._answer(data)

    def _answer(self, data: bytes) -> None:
        """Write a local answer now, or hold it until the client's earlier requests are answered."""
        if self.may_answer_now:
            self.write(data)
            return
        token = self.hold(data)
        if token:
            self._send_barrier(token)

    def send(self, command: str, *params: str, source: str | None = None) -> None:
        self.reply(format_line(source or self.server.server_name, command, *params))

    def numeric(self, code: str, *params: str) -> None:
        """A numeric answering this client. One with a fixed text (numerics.TEXTS) is given without
        it: the text is added here."""
        self.reply(self._numeric_line(code, with_text(code, params)))

    def numeric_as_given(self, code: str, *params: str) -> None:
        """A numeric whose every parameter, text included, the caller gives: the hub's answers and
        parse errors carry their own."""
        self.reply(self._numeric_line(code, params))

    def tell(self, code: str, *params: str) -> None:
        """A numeric that answers nothing this client asked (another member renamed a channel)."""
        self.write(self._numeric_line(code, with_text(code, params)))

    def _numeric_line(self, code: str, params: tuple[str, ...]) -> bytes:
        # Middle params often echo what the client typed; one that is empty, has a space or
        # starts with ':' would change the line's meaning, so it is shown as '*'.
        middle = [p if p and " " not in p and p[0] != ":" else "*" for p in params[:-1]]
        return format_line(self.server.server_name, code, self.display_nick, *middle, *params[-1:])

    def wait_for_hub(self) -> None:
        """Hold this client's later lines until the hub has handled what it sent so far."""
        self._barrier()

    def set_caps(self, caps: set[str]) -> None:
        self.caps = caps
        self.tag_mode = (TAG_TIME if SERVER_TIME in caps else 0) | (TAG_MSGID if MESSAGE_TAGS in caps else 0) | \
            (TAG_ACCOUNT if ACCOUNT_TAG in caps else 0)

    def close_forgotten(self, reason: str) -> None:
        """Close a client the hub has already let go of (its QUIT or a refusal): no QUIT back."""
        self.announced = False
        self.close(reason)

    def close(self, reason: str, notify: bool = True) -> None:
        """End the connection: the worker writes what is queued, tells the client why (ERROR,
        with `notify`) and the hub (QUIT, if it was announced), once."""
        if self.phase is CLOSED:
            return
        self._phase_to(CLOSE)
        self.outbox.effects.append((self, CLOSE_CONNECTION, (reason, notify)))


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
