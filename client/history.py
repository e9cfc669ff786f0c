"""Server-side history for the clients: the IRCv3 pieces ChatCore needs, with no I/O.

What is here
------------
- the capabilities the clients ask for (only those the server offers in CAP LS 302);
- server-time values to and from Unix time (`YYYY-MM-DDThh:mm:ss.sssZ`, UTC);
- the CHATHISTORY and SEARCH request lines (draft/chathistory, soju.im/search);
- `Batch`, one open BATCH being collected, and `HistoryState`, what a conversation knows of
  its own history (the oldest line seen, whether paging reached the start);
- the sentences for FAIL replies.

ChatCore (client/core.py) owns the state machine: it negotiates the capabilities, asks for
the latest lines of a room when it joins, collects the batches and turns them into events.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime

from ircproto.message import Message, escape_tag_value, format_line

# In the order they are requested. Each one only if the server offers it.
BATCH = "batch"
SERVER_TIME = "server-time"
MESSAGE_TAGS = "message-tags"
CHATHISTORY = "draft/chathistory"
EVENT_PLAYBACK = "draft/event-playback"
SEARCH = "soju.im/search"
WANTED_CAPS = (BATCH, SERVER_TIME, MESSAGE_TAGS, CHATHISTORY, EVENT_PLAYBACK, SEARCH)

HISTORY_LINES = 50  # lines asked for at a time (capped by ISUPPORT CHATHISTORY)
TARGETS_DAYS = 30  # how far back CHATHISTORY TARGETS looks for private conversations
TARGETS_LIMIT = 50
HOLD_SECONDS = 10.0  # live lines of a room wait this long at most for its history to arrive
MAX_BATCH_LINES = 10_000  # lines kept from one batch (a server could send any number)
OWN_SLACK = 30.0  # seconds of clock difference allowed when matching our own sent lines

HISTORY_BATCHES = {"chathistory"}
TARGETS_BATCHES = {"draft/chathistory-targets", "chathistory-targets"}
SEARCH_BATCHES = {"soju.im/search", "search"}
COLLECTED_BATCHES = HISTORY_BATCHES | TARGETS_BATCHES | SEARCH_BATCHES

# Separator lines: the same words in both front ends.
EARLIER = "— earlier messages —"
NOW = "— now —"
END_EARLIER = "— end of earlier messages —"
NO_EARLIER = "— no earlier messages —"
END_SEARCH = "— end of search results —"

_SERVER_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")


def parse_server_time(value: str | None) -> float | None:
    """A server-time tag value (or a TARGETS timestamp, with or without 'timestamp=') as Unix time."""
    if not value:
        return None
    if value.startswith("timestamp="):
        value = value[len("timestamp="):]
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        return None
    return stamp.timestamp()


def format_server_time(ts: float) -> str:
    """Unix time as the spec writes it: 2026-12-01T09:00:00.123Z (UTC, milliseconds)."""
    ms = int(round(ts * 1000))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def clock_text(ts: float, now: float | None = None) -> str:
    """Local time of day, with the date in front when it is not today: '08:59', '2026-11-30 08:59'."""
    local = time.localtime(ts)
    today = time.localtime(time.time() if now is None else now)
    if local[:3] == today[:3]:
        return time.strftime("%H:%M", local)
    return time.strftime("%Y-%m-%d %H:%M", local)


def wire_time(raw: str | None, ts: float) -> str:
    """The time to put in a request: the server's own text when it is in the standard form
    (exactly what it stored), otherwise ours."""
    return raw if raw and _SERVER_TIME.match(raw) else format_server_time(ts)


def latest_line(target: str, limit: int) -> bytes:
    return format_line(None, "CHATHISTORY", "LATEST", target, "*", str(limit))


def before_line(target: str, state: "HistoryState", limit: int, by_msgid: bool = False) -> bytes:
    """The page before the oldest line shown: by its msgid when the server takes msgids
    (ISUPPORT MSGREFTYPES; exact, where two lines may share a millisecond), else by its time."""
    if by_msgid and state.oldest_msgid:
        ref = f"msgid={state.oldest_msgid}"
    else:
        ref = f"timestamp={wire_time(state.oldest_raw, state.oldest_ts or 0.0)}"
    return format_line(None, "CHATHISTORY", "BEFORE", target, ref, str(limit))


def targets_line(now: float, limit: int, days: int = TARGETS_DAYS) -> bytes:
    return format_line(None, "CHATHISTORY", "TARGETS", f"timestamp={format_server_time(now)}",
                       f"timestamp={format_server_time(now - days * 86400)}", str(limit))


def search_line(words: str, where: str | None = None, sender: str | None = None) -> bytes:
    """SEARCH with its attributes in one parameter, escaped like message tags (soju.im/search)."""
    attrs = [("text", words)]
    if where:
        attrs.append(("in", where))
    if sender:
        attrs.append(("from", sender))
    return format_line(None, "SEARCH", ";".join(f"{key}={escape_tag_value(value)}" for key, value in attrs))


@dataclass
class Batch:
    kind: str
    params: list[str]
    collect: bool
    lines: list[Message] = field(default_factory=list)


@dataclass
class HistoryState:
    """What one conversation knows of its history on the server."""

    oldest_ts: float | None = None  # the oldest line shown (history or live) with a server time
    oldest_raw: str | None = None  # that line's time as the server wrote it
    oldest_msgid: str | None = None  # and its msgid
    done: bool = False  # an empty batch came back: nothing earlier exists
    fetched: bool = False  # its latest lines were asked for on this connection

    def saw(self, ts: float, raw: str | None, msgid: str | None = None) -> None:
        """A line with a server time was shown or received (batches come oldest first, so of
        lines with the same time the first one stays the oldest)."""
        if self.oldest_ts is None or ts < self.oldest_ts:
            self.oldest_ts, self.oldest_raw, self.oldest_msgid = ts, raw, msgid


_CHATHISTORY_FAIL = {
    "MESSAGE_ERROR": "the server could not retrieve them",
    "INVALID_TARGET": "there is no such conversation to look back in",
    "INVALID_PARAMS": "the server did not understand the request",
    "NEED_MORE_PARAMS": "the server did not understand the request",
    "INVALID_MSGREFTYPE": "the server did not understand the request",
    "UNKNOWN_COMMAND": "the server does not offer that",
}
_SEARCH_FAIL = {
    "INVALID_PARAMS": "the server did not accept those search words",
    "INTERNAL_ERROR": "the server could not run it",
    "NEED_MORE_PARAMS": "the server did not accept those search words",
}


def fail_reason(command: str, code: str, description: str) -> str:
    table = _CHATHISTORY_FAIL if command == "CHATHISTORY" else _SEARCH_FAIL if command == "SEARCH" else {}
    reason = table.get(code)
    if reason and description and description.rstrip(".") not in reason:
        return f"{reason} (\u201c{description}\u201d)"
    return reason or (f"\u201c{description}\u201d" if description else code.lower().replace("_", " "))
