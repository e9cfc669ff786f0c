"""IRC message parsing and serialisation: one line of bytes <-> `Message`.

Theory of operation
-------------------
A line (terminator already removed by `framing.LineBuffer`) is

    ['@' tags SPACE] [':' source SPACE] command {SPACE param} [SPACE ':' trailing]

Limits follow Modern IRC: the part after the tags may be at most 512 bytes including the
CRLF the client sent (so 510 without it); the tag section has its own budget (IRCv3
message-tags: 4094 bytes of tag data from a client, 4096 with the '@' and the space; server
tags such as time and msgid come on top, up to 8191 for the whole section). Longer input
raises `InputTooLong`, which carries ERR_INPUTTOOLONG so the caller can answer and keep the
connection. A client reading a server's lines passes the larger budget, `MAX_TAG_DATA`.

Text is decoded as UTF-8 with `surrogateescape`, so bytes that are not valid UTF-8 survive a
parse/serialise round trip unchanged instead of being replaced; the server relays exactly what
it received. A NUL byte is never accepted, and serialisation refuses CR, LF and NUL in any
parameter, so no relayed value can inject a second line.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ircproto import numerics

MAX_LINE = 512  # bytes after the tags, CRLF included
MAX_CLIENT_TAGS = 4094  # bytes of tag data a client may send (without the '@' and the space)
MAX_TAG_DATA = 8191 - 2  # bytes of tag data in any line, server tags included (8191 with '@' and space)
MAX_TAGGED_LINE = 8191  # bytes in a whole line with tags, CRLF included

_TAG_UNESCAPE = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
_TAG_ESCAPE = str.maketrans({";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n"})
_FORBIDDEN = ("\r", "\n", "\x00")


class ProtocolError(Exception):
    """Input that breaks the protocol; `numeric` is the reply that explains it."""

    def __init__(self, numeric: str, text: str) -> None:
        super().__init__(text)
        self.numeric = numeric
        self.text = text


class InputTooLong(ProtocolError):
    def __init__(self) -> None:
        super().__init__(numerics.ERR_INPUTTOOLONG, numerics.TEXTS[numerics.ERR_INPUTTOOLONG])


class EmptyMessage(ProtocolError):
    """A line with no command; servers ignore these silently."""

    def __init__(self) -> None:
        super().__init__(numerics.ERR_UNKNOWNERROR, "Empty message")


@dataclass(slots=True)
class Message:
    command: str
    params: list[str] = field(default_factory=list)
    source: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def wire_length(text: str) -> int:
    """Bytes this text takes on the wire (bytes that were not UTF-8 count as themselves)."""
    return len(_encode(text))


def unescape_tag_value(value: str) -> str:
    out = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            i += 1
            if i < len(value):  # a lone trailing backslash is dropped
                out.append(_TAG_UNESCAPE.get(value[i], value[i]))
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def escape_tag_value(value: str) -> str:
    return value.translate(_TAG_ESCAPE)


def _parse_tags(raw: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in raw.split(";"):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if key:
            tags[key] = unescape_tag_value(value) if sep else ""
    return tags


def parse(line: bytes, max_tag_data: int = MAX_CLIENT_TAGS) -> Message:
    """Parse one line without its terminator."""
    if b"\x00" in line:
        raise ProtocolError(numerics.ERR_UNKNOWNERROR, "Line contains a NUL byte")
    tags: dict[str, str] = {}
    if line[:1] == b"@":
        tag_part, _, line = line.partition(b" ")
        if len(tag_part) - 1 > max_tag_data:  # tag_part holds the '@'; the space is gone
            raise InputTooLong()
        tags = _parse_tags(_decode(tag_part[1:]))
    line = line.lstrip(b" ")
    if len(line) > MAX_LINE - 2:
        raise InputTooLong()
    text = _decode(line)
    source = None
    if text[:1] == ":":
        source, _, text = text.partition(" ")  # type: ignore[assignment]
        source = source[1:]
        text = text.lstrip(" ")
    head, sep, trailing = text.partition(" :")
    if text[:1] == ":":  # no middle params at all, only a trailing one
        head, sep, trailing = "", ":", text[1:]
    words = head.split(" ")  # only SPACE separates; other whitespace is data
    if "" in words:  # runs of spaces
        words = [w for w in words if w]
    if not words:
        raise EmptyMessage()
    params = words[1:]
    if sep:
        params.append(trailing)
    return Message(words[0].upper(), params, source, tags)


def serialize(msg: Message) -> bytes:
    """Render a message as one CRLF-terminated line."""
    return format_line(msg.source, msg.command, *msg.params, tags=msg.tags or None)


def format_line(source: str | None, command: str, *params: str, tags: dict[str, str] | None = None) -> bytes:
    """Render one line; raises ValueError for a parameter that could break framing."""
    parts = []
    if tags:
        parts.append("@" + ";".join(k + "=" + escape_tag_value(v) if v else k for k, v in tags.items()))
    if source:
        parts.append(":" + source)
    parts.append(command)
    last = len(params) - 1
    for i, param in enumerate(params):
        for bad in _FORBIDDEN:
            if bad in param:
                raise ValueError(f"parameter {i} contains {bad!r}")
        if i == last and (not param or " " in param or param[0] == ":"):
            parts.append(":" + param)
        elif not param or " " in param or param[0] == ":":
            raise ValueError(f"middle parameter {i} {param!r} needs to be the last one")
        else:
            parts.append(param)
    return _encode(" ".join(parts)) + b"\r\n"


def truncate_utf8(text: str, max_bytes: int) -> str:
    """Cut text to at most max_bytes of UTF-8 without splitting a code point."""
    raw = _encode(text)
    if len(raw) <= max_bytes:
        return text
    end = max_bytes
    while end > 0 and (raw[end] & 0xC0) == 0x80:  # raw[end] continues a code point: back up to its start
        end -= 1
    return _decode(raw[:end])
