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

Output is written straight to the transport. Nothing ever awaits a slow client: once more
than `limits.sendq` bytes are queued for it, it is dropped with `ERROR :SendQ exceeded` and
everybody else carries on.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING

from ircproto.flood import FakeLag
from ircproto.framing import LineBuffer, ReadQExceeded
from ircproto.message import EmptyMessage, ProtocolError, format_line, parse

if TYPE_CHECKING:
    from workers.worker import Worker

BACKLOG_PAUSE = 64  # lines held (waiting for the hub, or slowed by fakelag) before reading is paused


class Session(asyncio.Protocol):
    def __init__(self, worker: "Worker", cid: int, host: str) -> None:
        self.worker = worker
        self.cid = cid
        self.host = host
        self.nick: str | None = None
        self.user: str | None = None
        self.realname = ""
        self.password: str | None = None
        self.cap_negotiating = False
        self.registered = False
        self.oper = False
        self.announced = False  # the hub knows this connection, so it must hear when it closes
        self.lines_before_registration = 0
        self.waiting = False
        self.backlog: deque[bytes] = deque()  # lines received and not yet handled, in order
        self.fakelag: FakeLag | None = None
        self._throttled: asyncio.TimerHandle | None = None
        self.closed = False
        self.transport: asyncio.Transport | None = None
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
            self.backlog.extend(self.lines.feed(data))
        except ReadQExceeded:
            self.close("Input line too long (no line ending)")
            return
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
            self.numeric(err.numeric, err.text)
            return
        self.worker.dispatch(self, msg)

    def ask_hub(self, request: tuple) -> None:
        """Send a request and hold further input until the hub answers it."""
        self.worker.request(request)
        self.waiting = True

    def resume(self) -> None:
        """The hub answered: carry on with the held lines."""
        self.waiting = False
        self._process()

    def _process(self) -> None:
        """Handle held lines in order until the session must wait (for the hub, or fakelag)."""
        backlog = self.backlog
        while backlog and not self.waiting and not self.closed and self._throttled is None:
            if self.registered and self.worker.config.server.flood_control and self._must_wait():
                break
            self.handle_line(backlog.popleft())
        if self.closed or self.transport is None:
            return
        if len(backlog) > BACKLOG_PAUSE and not self.reading_paused:
            self.reading_paused = True  # the client is ahead of us: stop reading, so it is slowed
            self.transport.pause_reading()
        elif not backlog and self.reading_paused:
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
        if self.closed:
            return
        transport = self.transport
        transport.write(data)  # type: ignore[union-attr]
        if transport.get_write_buffer_size() > self.worker.config.limits.sendq:  # type: ignore[union-attr]
            self.close("SendQ exceeded", notify=True)

    def send(self, command: str, *params: str, source: str | None = None) -> None:
        self.write(format_line(source or self.worker.server_name, command, *params))

    def numeric(self, code: str, *params: str) -> None:
        # Middle params often echo what the client typed; one that is empty, has a space or
        # starts with ':' would change the line's meaning, so it is shown as '*'.
        middle = [p if p and " " not in p and p[0] != ":" else "*" for p in params[:-1]]
        self.write(format_line(self.worker.server_name, code, self.display_nick, *middle, *params[-1:]))

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
