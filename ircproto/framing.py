"""Splitting a byte stream into IRC lines, with a cap on bytes waiting for a newline.

Clients end lines with CRLF, but bare LF and bare CR are accepted too (Modern IRC, "Message
Format"); CRLF then simply yields an empty line, which is ignored. A peer that sends more than
`max_pending` bytes without any line ending is not speaking IRC, and `ReadQExceeded` lets the
caller drop it rather than buffer without bound.
"""
from ircproto.message import MAX_TAGGED_LINE


class ReadQExceeded(Exception):
    """More bytes arrived without a line ending than any valid line can hold."""


class LineBuffer:
    """Bytes in, complete lines (without terminators) out."""

    __slots__ = ("_pending", "max_pending")

    def __init__(self, max_pending: int = MAX_TAGGED_LINE) -> None:
        self._pending = b""
        self.max_pending = max_pending

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._pending + data if self._pending else data
        last = max(buf.rfind(b"\n"), buf.rfind(b"\r"))
        if last < 0:
            self._pending = buf
            lines: list[bytes] = []
        else:
            self._pending = buf[last + 1:]
            # Any CR or LF ends a line: fold CR into LF and split once (C speed, no regex).
            lines = [line for line in buf[:last].replace(b"\r", b"\n").split(b"\n") if line]
        if len(self._pending) > self.max_pending:
            raise ReadQExceeded(len(self._pending))
        return lines

    @property
    def pending(self) -> int:
        return len(self._pending)
