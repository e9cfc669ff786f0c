"""The network side of the client: one asyncio task that connects, registers, relays and reconnects.

`Connection` moves lines between a socket and a `ChatCore`. Registration asks the front end
for another nickname (`ask_nick`) while the one tried is taken or invalid. If an established
connection drops, it reconnects with exponential backoff, registers again and rejoins the
rooms it was in, telling the user at each step. Front ends receive `Event` lists through
`on_events` and call `send_input` with what the user typed, or `apply` with an `Outcome` of the
core (older history, a search, opening a conversation).

After every message and every input, the lines the core wants to send (capability negotiation,
history requests) go out. While the core holds live lines for a room's history, a timer lets
them out after `history.HOLD_SECONDS` if the server never answers.
"""
from __future__ import annotations

import asyncio
import errno
from collections import deque
import os
import ssl
from typing import Awaitable, Callable

from client.core import NICK_RULES, ChatCore, Event, Outcome, nick_refused_text
from ircproto import numerics as N
from ircproto.framing import LineBuffer
from ircproto.message import MAX_TAG_DATA, EmptyMessage, ProtocolError, format_line, parse

BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
HOLD_CHECK = 1.0  # seconds between looks at live lines held for history


class ConnectError(Exception):
    """A connection could not be made; the message is for the user."""


# Lines that change what a front end shows without an event to print (who is away, who is
# logged in): the front end is still told, with no events, so the window redraws its people.
SILENT_CHANGES = frozenset(("AWAY", "ACCOUNT"))


class Connection:
    def __init__(self, core: ChatCore, host: str, port: int, on_events: Callable[[list[Event]], None],
                 ask_nick: Callable[[str], Awaitable[str | None]] | None = None,
                 tls: bool = False, insecure: bool = False) -> None:
        self.core = core
        self.host = host
        self.port = port
        self.on_events = on_events
        self.ask_nick = ask_nick
        self.tls = tls
        self.insecure = insecure
        self.quitting = False
        self.closed = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None
        self._reader: asyncio.StreamReader | None = None
        self._lines = LineBuffer()
        self._pending: deque = deque()  # parsed messages not yet handed out
        self._hold_timer: asyncio.TimerHandle | None = None

    # --- connecting ----------------------------------------------------------------------
    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        context = ssl.create_default_context()
        if self.insecure:  # the user asked to accept a self-signed certificate
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    async def _open(self) -> None:
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=self._ssl_context()), 10)
        except ssl.SSLCertVerificationError as exc:
            raise ConnectError(f"the server's certificate was not accepted ({exc.verify_message}); "
                               "use --insecure to accept a self-signed one") from None
        except (OSError, asyncio.TimeoutError) as exc:
            detail = "" if getattr(exc, "errno", None) in (None, errno.ECONNREFUSED) else f" ({os.strerror(exc.errno)})"
            raise ConnectError(f"could not connect to {self.host}:{self.port} - is the server running? "
                               f"(python -m hub){detail}") from None
        self._lines = LineBuffer()
        self._pending = deque()

    async def start(self) -> None:
        """Connect and register once; raises ConnectError with a sentence for the user."""
        await self._open()
        await self._register()
        self._send_raw(self.core.rejoin_lines())

    async def _register(self) -> None:
        core = self.core
        self._send_raw(core.start_lines())  # CAP LS 302, NICK, USER
        while not core.registered:
            msg = await self._next_message()
            if msg is None:
                raise ConnectError(f"the server at {self.host}:{self.port} closed the connection while we "
                                   "were signing in")
            if msg.command in (N.ERR_NICKNAMEINUSE, N.ERR_ERRONEUSNICKNAME, N.ERR_NONICKNAMEGIVEN):
                reason = (nick_refused_text(msg) or "That nickname is taken." if msg.command == N.ERR_NICKNAMEINUSE
                          else "That nickname isn't allowed. " + NICK_RULES)
                new = await self.ask_nick(reason) if self.ask_nick else core.nick + "_"
                if not new:
                    raise ConnectError("no nickname chosen")
                core.nick = new
                self._send_raw([format_line(None, "NICK", new)])
                continue
            self._deliver(msg)

    # --- the running session -------------------------------------------------------------
    async def run(self) -> None:
        """Relay until the user quits; reconnect with backoff when the connection drops."""
        try:
            while True:
                while (msg := await self._next_message()) is not None:
                    self._deliver(msg)
                held = self.core.release_held()  # no history will come on this connection
                if held:
                    self.on_events(held)
                if self.quitting:
                    return
                await self._reconnect()
        finally:
            self.closed.set()

    async def _reconnect(self) -> None:
        delay = BACKOFF_FIRST
        while not self.quitting:
            self.on_events([Event("error", f"Connection lost. Reconnecting in {delay:.0f}s...")])
            await asyncio.sleep(delay)
            try:
                await self.start()
            except ConnectError as exc:
                self.on_events([Event("error", f"Still no connection: {exc}")])
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            self.on_events([Event("info", "Reconnected; rejoining your rooms.")])
            return

    def _deliver(self, msg) -> None:
        if msg.command == "ERROR" and self.quitting:
            return  # the goodbye we asked for
        if msg.command == "PING":
            self._send_raw([format_line(None, "PONG", msg.params[-1] if msg.params else "")])
            return
        events = self.core.handle_message(msg)
        self._send_raw(self.core.take_sends())
        if events or msg.command in SILENT_CHANGES:
            self.on_events(events)
        self._watch_holds()

    def _watch_holds(self) -> None:
        if self.core.holding and self._hold_timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._hold_timer = loop.call_later(HOLD_CHECK, self._check_holds)

    def _check_holds(self) -> None:
        self._hold_timer = None
        events = self.core.expire_held()
        if events:
            self.on_events(events)
        self._watch_holds()

    async def _next_message(self):
        while not self._pending:
            try:
                data = await self._reader.read(65536)  # type: ignore[union-attr]
            except (OSError, ssl.SSLError):
                data = b""
            if not data:
                return None
            for line in self._lines.feed(data):
                try:
                    self._pending.append(parse(line, MAX_TAG_DATA))
                except (EmptyMessage, ProtocolError):
                    continue
        return self._pending.popleft()

    # --- output --------------------------------------------------------------------------
    def send_input(self, text: str) -> bool:
        """What the user typed; returns True when it was /quit."""
        return self.apply(self.core.handle_input(text))

    def apply(self, outcome: Outcome) -> bool:
        """Carry out what the core decided: send its lines, show its events."""
        self._send_raw(outcome.send + self.core.take_sends())
        if outcome.events:
            self.on_events(outcome.events)
        if outcome.quit:
            self.quitting = True
        self._watch_holds()
        return outcome.quit

    def _send_raw(self, lines: list[bytes]) -> None:
        writer = self._writer
        if writer is None or writer.is_closing() or not lines:
            return
        writer.write(b"".join(lines))

    async def quit(self, reason: str = "Leaving") -> None:
        """Say goodbye and wait (briefly) for the server to close the connection."""
        if not self.quitting:
            self.quitting = True
            self._send_raw([format_line(None, "QUIT", reason)])
        try:
            await asyncio.wait_for(self.closed.wait(), 5)
        except asyncio.TimeoutError:
            pass
        if self._writer is not None:
            self._writer.close()
