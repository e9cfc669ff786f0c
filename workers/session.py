"""One client connection: bytes in, parsed commands dispatched, replies and relays out.

Theory of operation
-------------------
A `Session` is the asyncio protocol of one TCP connection. Input is split into lines by
`LineBuffer` and parsed once; each message goes through `commands.dispatch`. Requests that
change global state go to the hub; while one whose answer changes how later lines must be
read is outstanding (registration, a nick change), the session *waits*: further lines are
held in `backlog`, in order, and replayed when the hub answers, so a client's commands always
take effect in the order it sent them. Flood control (fakelag) holds lines the same way when a
client sends faster than its allowance. A long backlog pauses reading from the socket, so a
client cannot grow it without bound and a flooder is slowed, not dropped.

Answers keep the order of the commands (`ReplyOrder`, workers/order.py): a local answer that
would overtake what the hub still owes this client for an earlier command is held behind a
barrier and written when the barrier comes back; the hub's own answers arrive in order.

Queries are answered from the worker's replica, but only after a *barrier* has been through
the hub and back: by then the replica holds every event the hub had decided before the query
reached it. So "JOIN #a" then "WHO #a" shows the client in #a, and once bob has seen his own
306, alice's WHOIS (on another worker) shows him away, exactly as on a one-process server.
The cost is one hub round trip per query; messages never wait for one.

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

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING

from ipc.link import R_BARRIER
from ircproto.caps import LABELED_RESPONSE, MESSAGE_TAGS, SERVER_TIME
from ircproto.flood import FakeLag
from ircproto.numerics import with_text
from ircproto.framing import LineBuffer, ReadQExceeded
from ircproto.message import EmptyMessage, ProtocolError, escape_tag_value, format_line, parse
from workers.order import ReplyOrder

if TYPE_CHECKING:
    from workers.worker import Worker

BACKLOG_PAUSE = 64  # lines held (waiting for the hub, or slowed by fakelag) before reading is paused
MAX_LABEL = 64  # bytes of a labeled-response label (the IRCv3 limit)
TAG_TIME, TAG_MSGID = 1, 2  # bits of `tag_mode`: server-time, message-tags (msgid and client tags)
NO_BACKLOG: tuple = ()  # shared stand-ins for what most sessions never hold
NO_CAPS: frozenset[str] = frozenset()
NO_CAPTURE: list[bytes] = []  # never appended to: `reply` captures only while a label is set
NO_OUTPUT: list[bytes] = []  # never appended to: a session has a list of its own only while output waits


def add_tag(line: bytes, tag: bytes) -> bytes:
    """Put one more tag on a rendered line."""
    return b"@" + tag + (b";" + line[1:] if line[:1] == b"@" else b" " + line)


class Session(ReplyOrder, asyncio.Protocol):
    # One per connection, tens of thousands per worker: no __dict__.
    __slots__ = ("worker", "cid", "host", "nick", "user", "realname", "password", "cap_negotiating", "caps",
                 "tag_mode", "registered", "syncing", "sync_token", "fresh", "label", "captured", "idle_since",
                 "announced", "lines_before_registration", "waiting", "backlog", "fakelag", "_throttled",
                 "closed", "transport", "outbuf", "lines", "connected_at", "last_seen", "ping_sent_at",
                 "reading_paused")

    def __init__(self, worker: "Worker", cid: int, host: str) -> None:
        ReplyOrder.__init__(self)
        self.worker = worker
        self.cid = cid
        self.host = host
        self.nick: str | None = None
        self.user: str | None = None
        self.realname = ""
        self.password: str | None = None
        self.cap_negotiating = False
        self.caps: frozenset[str] | set[str] = NO_CAPS
        self.tag_mode = 0  # TAG_TIME | TAG_MSGID, from the capabilities
        self.registered = False
        self.syncing = False  # input waits for the barrier `sync_token`
        self.sync_token = 0
        self.fresh = False  # a barrier came back: the replica is new enough for the next query
        self.label: str | None = None
        self.captured: list[bytes] = NO_CAPTURE  # a list of its own only while a labelled command runs
        self.idle_since = time.time()  # last PRIVMSG, NOTICE or TAGMSG, for WHOIS
        self.announced = False  # the hub knows this connection, so it must hear when it closes
        self.lines_before_registration = 0
        self.waiting = False
        self.backlog: deque[bytes] | tuple = NO_BACKLOG  # lines received and not yet handled, in order
        self.fakelag: FakeLag | None = None
        self._throttled: asyncio.TimerHandle | None = None
        self.closed = False
        self.transport: asyncio.Transport | None = None
        self.outbuf: list[bytes] = NO_OUTPUT  # lines written during this loop iteration, sent by Worker.flush_output
        self.lines = LineBuffer()
        now = time.monotonic()
        self.connected_at = now
        self.last_seen = now
        self.ping_sent_at: float | None = None
        self.reading_paused = False

    # --- transport callbacks -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.worker.session_opened(self)

    def data_received(self, data: bytes) -> None:
        self.last_seen = time.monotonic()
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
        self._process()

    def connection_lost(self, exc: Exception | None) -> None:
        self.worker.transport_gone(self)
        self.close(f"Read error: {exc.strerror or exc}" if isinstance(exc, OSError) else "Connection closed")

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
        if (not self.fresh and self.worker.reads_state(msg.command)) or \
                (label and not self.may_answer_now):
            self._hold_first(line)  # handled once the barrier is back
            self._barrier()
            return
        self.fresh = False
        if label:
            self.label = label
            self.captured = []
        self.worker.dispatch(self, msg)
        self._settle()

    def _hold_first(self, line: bytes) -> None:
        if self.backlog is NO_BACKLOG:
            self.backlog = deque()
        self.backlog.appendleft(line)  # type: ignore[union-attr]

    def request(self, item: tuple) -> None:
        """Send a request to the hub; local answers and queries after it wait until it has been handled."""
        self.worker.request(item)
        self.in_flight = True

    def ask_hub(self, request: tuple) -> None:
        """Send a request and hold further input until the hub answers it."""
        self.request(request)
        self.waiting = True

    def resume(self) -> None:
        """The hub answered: carry on with the held lines."""
        self.waiting = False
        self._settle()
        self._process()

    def _barrier(self) -> None:
        """Hold input until the hub has handled everything before this point."""
        self.sync_token = self.new_barrier()
        self._send_barrier(self.sync_token)
        self.syncing = True

    def _send_barrier(self, token: int) -> None:
        self.worker.request((R_BARRIER, self.cid, token))

    def barrier_came_back(self, token: int) -> None:
        for line in self.barrier_back(token):
            self.write(line)
        if self.syncing and token >= self.sync_token:
            self.syncing = False
            self.fresh = True
            self._settle()
            self._process()

    def _settle(self) -> None:
        """Finish a labelled command once everything it caused has come back from the hub."""
        if self.label is None or self.waiting or self.syncing or self.closed:
            return
        if self.in_flight:
            self._barrier()
            return
        label = b"label=" + escape_tag_value(self.label).encode()
        captured, self.label, self.captured = self.captured, None, NO_CAPTURE
        if not captured:
            self._answer(add_tag(format_line(self.worker.server_name, "ACK"), label))
        elif len(captured) == 1:
            self._answer(add_tag(captured[0], label))
        else:
            ref = self.worker.next_batch_ref()
            self._answer(add_tag(format_line(self.worker.server_name, "BATCH", "+" + ref, LABELED_RESPONSE), label))
            tag = b"batch=" + ref.encode()
            for line in captured:
                self._answer(add_tag(line, tag))
            self._answer(format_line(self.worker.server_name, "BATCH", "-" + ref))

    def _process(self) -> None:
        """Handle held lines in order until the session must wait (for the hub, or fakelag)."""
        worker = self.worker
        hub_turn, worker.hub_turn = worker.hub_turn, False  # what handlers write are local answers
        try:
            while self.backlog and not (self.waiting or self.syncing or self.closed) and self._throttled is None:
                if self.registered and worker.config.server.flood_control and self._must_wait():
                    break
                self.handle_line(self.backlog.popleft())  # type: ignore[union-attr]
        finally:
            worker.hub_turn = hub_turn
        if not self.backlog:
            self.backlog = NO_BACKLOG  # an empty deque is 600 bytes; most sessions hold nothing
        if self.closed or self.transport is None:
            return
        if len(self.backlog) > BACKLOG_PAUSE and not self.reading_paused:
            self.reading_paused = True  # the client is ahead of us: stop reading, so it is slowed
            self.transport.pause_reading()
        elif not self.backlog and self.reading_paused:
            self.reading_paused = False
            if not self.worker.clients_paused:
                self.transport.resume_reading()

    def _must_wait(self) -> bool:
        limits = self.worker.config.limits
        now = time.monotonic()
        if self.fakelag is None:
            self.fakelag = FakeLag(limits.flood_burst, limits.flood_rate, now)
        delay = self.fakelag.delay(now)
        if delay:
            self._throttled = asyncio.get_running_loop().call_later(delay, self._unthrottle)
        return bool(delay)

    def _unthrottle(self) -> None:
        self._throttled = None
        self._process()

    # --- output --------------------------------------------------------------------------
    @property
    def display_nick(self) -> str:
        return self.nick or "*"

    @property
    def prefix(self) -> str:
        return f"{self.nick}!{self.user}@{self.host}"

    def write(self, data: bytes) -> None:
        """Queue a line; the worker sends each session's lines of one loop iteration at once."""
        if self.closed:
            return
        if self.outbuf is NO_OUTPUT:
            self.worker.output_pending(self)
            self.outbuf = [data]
        else:
            self.outbuf.append(data)

    def flush(self) -> None:
        """Hand this iteration's lines to the transport in one write (one syscall, not one per line)."""
        if self.closed or not self.outbuf:
            return
        data = b"".join(self.outbuf)
        self.outbuf = NO_OUTPUT
        transport = self.transport
        transport.write(data)  # type: ignore[union-attr]
        if transport.get_write_buffer_size() > self.worker.config.limits.sendq:  # type: ignore[union-attr]
            self.close("SendQ exceeded", notify=True)

    def reply(self, data: bytes) -> None:
        """Write a line that answers this client's own command (labelled, if it asked for that).

        The hub's answers arrive in order, so while the worker applies them they go straight
        out; a local answer may have to wait for the hub to answer earlier commands (order.py)."""
        if self.label is not None:
            self.captured.append(data)
        elif self.worker.hub_turn:
            self.write(data)
        else:
            self._answer(data)

    def _answer(self, data: bytes) -> None:
        """Write a local answer now, or hold it until the client's earlier requests are answered."""
        if not self.in_flight and not self.gates:
            self.write(data)
            return
        token = self.hold(data)
        if token:
            self._send_barrier(token)

    def send(self, command: str, *params: str, source: str | None = None) -> None:
        self.reply(format_line(source or self.worker.server_name, command, *params))

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
        return format_line(self.worker.server_name, code, self.display_nick, *middle, *params[-1:])

    def wait_for_hub(self) -> None:
        """Hold this client's later lines until the hub has handled what it sent so far."""
        self._barrier()

    def set_caps(self, caps: set[str]) -> None:
        self.caps = caps
        self.tag_mode = (TAG_TIME if SERVER_TIME in caps else 0) | (TAG_MSGID if MESSAGE_TAGS in caps else 0)

    def close_forgotten(self, reason: str) -> None:
        """Close a client the hub has already let go of (its QUIT or a refusal): no QUIT back."""
        self.announced = False
        self.close(reason)

    def close(self, reason: str, notify: bool = True) -> None:
        """End the connection; tell the client why (ERROR) and the hub (QUIT) once."""
        if self.closed:
            return
        self.closed = True
        if self._throttled is not None:
            self._throttled.cancel()
        if self.transport is not None:
            if self.outbuf and reason != "SendQ exceeded" and not self.transport.is_closing():
                self.transport.write(b"".join(self.outbuf))  # what was said before the goodbye
            self.outbuf = NO_OUTPUT
            if notify and not self.transport.is_closing():
                try:
                    self.transport.write(format_line(None, "ERROR", reason))
                except (RuntimeError, OSError):
                    pass
            if reason == "SendQ exceeded":
                self.transport.abort()  # a full queue will never drain; don't wait for it
            else:
                self.transport.close()
        self.worker.session_closed(self, reason)


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
