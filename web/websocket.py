"""IRC over WebSocket (the IRCv3 websocket spec) as a transport that a Session cannot tell from TCP.

Theory of operation
-------------------
After the HTTP upgrade (web/http.py) a `WebSocketTransport` is two things at once: the protocol
of the raw connection (a `SocketStream`, or asyncio's SSL transport for wss, calls its
`data_received` and `connection_lost`), and the transport of one `Session`, with the interface
`SocketStream` has (write, get_write_buffer_size, pause_reading, resume_reading, is_closing,
close, abort). So limits, fakelag, sendq and the answer order apply unchanged.

In: wsproto (sans-I/O: bytes in, events out) parses the frames. Each complete message is one IRC
line without its line ending (the spec), handed to the session with a CRLF. Text and binary
messages are both accepted whatever was negotiated (the spec allows it); a text message that is
not UTF-8 makes wsproto close with 1007; a message longer than any IRC line (`MAX_MESSAGE`)
closes with 1009 as soon as its length is known, so nothing is buffered beyond it. Pings are
answered with pongs.

Out: the session writes IRC bytes, often many lines in one write; each line becomes one frame,
text or binary as negotiated, without its CRLF. Server frames are not masked, so they are built
here (`encode_frames`: one join for the whole write) rather than with one wsproto call per line;
wsproto writes the control frames (ping, pong, close). A text frame never carries invalid UTF-8
(the spec: the browser would drop the connection): a bad sequence becomes U+FFFD.

Backpressure is the raw transport's: `get_write_buffer_size` counts the framed bytes waiting,
which is what sendq must bound, and pausing reading pauses the socket.

Keepalive (`tick`): after `ping_interval` seconds without a frame from the client, a ping; if
another interval passes with nothing, the connection is closed (1001). Browsers answer pings
themselves, so an idle page in a background tab stays connected.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.frame_protocol import CloseReason

log = logging.getLogger("hubchat.web")

TEXT, BINARY = "text.ircv3.net", "binary.ircv3.net"
SUBPROTOCOLS = (TEXT, BINARY)
MAX_MESSAGE = 8191  # bytes: the longest IRC line with tags (ircproto.message.MAX_TAGGED_LINE)
_OP_TEXT, _OP_BINARY = 0x1, 0x2


def negotiate(offered: list[str]) -> str | None:
    """The subprotocol to answer with: the first the client offers (its order is its preference)
    that we speak, or None: then no Sec-WebSocket-Protocol header, and text frames."""
    for name in offered:
        if name in SUBPROTOCOLS:
            return name
    return None


def offered_subprotocols(values: list[str]) -> list[str]:
    """The Sec-WebSocket-Protocol header values (there may be several lines) as one ordered list."""
    return [token.strip() for value in values for token in value.split(",") if token.strip()]


def encode_frames(lines: list[bytes], opcode: int) -> bytes:
    """Unmasked, unfragmented frames (RFC 6455 5.2), one per line."""
    first = 0x80 | opcode
    parts = []
    for line in lines:
        n = len(line)
        if n < 126:
            parts.append(bytes((first, n)))
        elif n < 65536:
            parts.append(bytes((first, 126)) + n.to_bytes(2, "big"))
        else:
            parts.append(bytes((first, 127)) + n.to_bytes(8, "big"))
        parts.append(line)
    return b"".join(parts)


def valid_text(lines: list[bytes]) -> list[bytes]:
    """The lines with any invalid UTF-8 replaced by U+FFFD (the spec allows that, not relaying it)."""
    fixed = []
    for line in lines:
        try:
            line.decode()
        except UnicodeDecodeError:
            line = line.decode(errors="replace").encode()
        fixed.append(line)
    return fixed


class WebSocketTransport:
    __slots__ = ("raw", "ws", "binary", "protocol", "closing", "lost", "partial", "partial_size",
                 "last_seen", "ping_sent", "ping_interval", "opcode")

    def __init__(self, raw: Any, subprotocol: str | None, ping_interval: float) -> None:
        self.raw = raw  # the connection under the frames
        self.ws = Connection(ConnectionType.SERVER)
        self.binary = subprotocol == BINARY
        self.opcode = _OP_BINARY if self.binary else _OP_TEXT
        self.protocol: Any = None
        self.closing = False
        self.lost = False
        self.partial: list[bytes] = []  # the frames so far of a message that is not finished
        self.partial_size = 0
        self.last_seen = time.monotonic()
        self.ping_sent: float | None = None
        self.ping_interval = ping_interval

    def start(self, protocol: Any, trailing: bytes) -> None:
        """Hand the connection to its protocol (the session), then anything the client sent
        right after its upgrade request."""
        self.protocol = protocol
        protocol.connection_made(self)
        if trailing:
            self.data_received(trailing)

    # --- the Transport interface, towards the session ------------------------------------
    def write(self, data: bytes) -> None:
        if self.closing or not data:
            return
        lines = data.split(b"\r\n")
        if not lines[-1]:
            lines.pop()
        if not self.binary and not data.isascii():
            try:
                data.decode()
            except UnicodeDecodeError:
                lines = valid_text(lines)
        self.raw.write(encode_frames(lines, self.opcode))

    def get_write_buffer_size(self) -> int:
        return self.raw.get_write_buffer_size()

    def pause_reading(self) -> None:
        if not self.lost:
            self.raw.pause_reading()

    def resume_reading(self) -> None:
        if not self.lost:
            self.raw.resume_reading()

    def is_closing(self) -> bool:
        return self.closing or self.raw.is_closing()

    def close(self, code: int = CloseReason.NORMAL_CLOSURE, reason: str = "") -> None:
        """Say goodbye with a close frame, then close the connection once what is queued is written."""
        if self.closing:
            return
        self.closing = True
        if self.ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            self.raw.write(self.ws.send(CloseConnection(code=code, reason=reason)))
        self.raw.close()

    def abort(self) -> None:
        self.closing = True
        self.raw.abort()

    # --- the protocol of the raw connection -----------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.last_seen = time.monotonic()
        self.ping_sent = None
        ws = self.ws
        ws.receive_data(data)
        lines = []
        for event in ws.events():
            kind = type(event)
            if kind is TextMessage or kind is BytesMessage:
                chunk = event.data.encode() if kind is TextMessage else bytes(event.data)
                self.partial_size += len(chunk)
                if self.partial_size > MAX_MESSAGE:
                    self._fail(CloseReason.MESSAGE_TOO_BIG, f"a message is longer than {MAX_MESSAGE} bytes")
                    break
                if not event.message_finished:
                    self.partial.append(chunk)
                    continue
                if self.partial:
                    self.partial.append(chunk)
                    chunk = b"".join(self.partial)
                    self.partial = []
                self.partial_size = 0
                lines.append(chunk.rstrip(b"\r\n") + b"\r\n")
            elif kind is Ping:
                self.raw.write(ws.send(event.response()))
            elif kind is CloseConnection:
                if ws.state is ConnectionState.REMOTE_CLOSING:  # the client said goodbye: answer it
                    self.closing = True
                    self.raw.write(ws.send(event.response()))
                    self.raw.close()
                else:  # wsproto found the client's frames broken (1007 for bad UTF-8, 1002 ...)
                    self._fail(event.code, event.reason)
                break
            elif kind is Pong:
                pass  # any frame is a sign of life (last_seen, above)
        if lines and self.protocol is not None:
            self.protocol.data_received(b"".join(lines))

    def _fail(self, code: int, reason: str) -> None:
        log.info("closing a WebSocket client: %s (%d)", reason, code)
        self.close(code, reason[:120])

    def connection_lost(self, exc: Exception | None) -> None:
        if self.lost:
            return
        self.lost = True
        self.closing = True
        if self.protocol is not None:
            self.protocol.connection_lost(exc)

    # --- keepalive ---------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        if self.closing:
            return
        if self.ping_sent is not None:
            if now - self.ping_sent > self.ping_interval:
                self._fail(CloseReason.GOING_AWAY, "no answer to a ping")
        elif now - self.last_seen > self.ping_interval:
            self.raw.write(self.ws.send(Ping(payload=b"hubchat")))
            self.ping_sent = now
