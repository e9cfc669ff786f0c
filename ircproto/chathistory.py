"""IRCv3 history: `CHATHISTORY` (draft/chathistory, draft/event-playback) and `SEARCH`
(soju.im/search). Sans-I/O: a command's parameters in, a query (or the FAIL that refuses it)
out; the store's rows in, the lines of one batch out.

Theory of operation
-------------------
The worker parses the command (`parse_chathistory`, `parse_search`) and either answers a
`Fail` itself or sends the query to the hub (`R_HISTORY`). The hub decides who may see what,
asks the store and answers `D_HISTORY` with the rows (or a `D_FAIL`, built with `refusal`), and
the worker renders them for that client (`render`): one batch, rendered once.

A query is a plain tuple (hashable, picklable, built-in types only). Times are integer
microseconds since the epoch (UTC); a message reference `ref` is `("msgid", str)` or
`("timestamp", int_us)`; `target` is the name as the client gave it (the hub folds it); the
last element, `playback`, is whether the client negotiated draft/event-playback, so the
store may return events (JOIN, PART, ...) and not only PRIVMSG and NOTICE:

    ("LATEST", target, ref | None, limit, playback)      None: `*`, no lower bound
    ("BEFORE", target, ref, limit, playback)              before and excluding ref
    ("AFTER", target, ref, limit, playback)               after and excluding ref
    ("AROUND", target, ref, limit, playback)              up to limit in all, on both sides
    ("BETWEEN", target, ref1, ref2, limit, playback)      from ref1 towards ref2, both excluded;
                                                          ref2 may be earlier than ref1
    ("TARGETS", ref1, ref2, limit, playback)              timestamps only; either order
    ("SEARCH", target | None, sender | None, after_us | None, before_us | None, text | None,
     limit, False)                                        soju.im/search: PRIVMSG and NOTICE only,
                                                          after/before inclusive

`limit` is always 1..`MAX_LIMIT` (a larger one is clamped). A timestamp names a millisecond
(`...T14:33:26.123Z` is 123000 us past the second); messages are shown to the millisecond,
rounded to the nearest, so a timestamp copied from a message's `time` tag may be up to 500 us
off that message's own time: a msgid is the exact reference (MSGREFTYPES).

Rows, what `D_HISTORY` carries, in the store's order (ascending time), for the history
subcommands and SEARCH a `Record` each:

    (msgid, time_us, target, owner, kind, sender, author, line, tags)

`kind` is the command (PRIVMSG, NOTICE, TAGMSG, JOIN, PART, QUIT, KICK, NICK, TOPIC, MODE),
`line` the line without tags as clients saw it (a str without CRLF, ":alice!a@h PRIVMSG #lobby :hi";
bytes, and a trailing CRLF, are taken too, so the live path's rendered line may be stored as is),
`tags` the client-only tags in wire form without '@' ("+draft/reply=abc") or "". Only `msgid`,
`time_us`, `kind`, `line` and `tags` are read here. For TARGETS each row is
`(target_name, latest_time_us)`.

Rendering follows the client's capabilities, as ergo and soju do: the `batch` wrapper only with
`batch` (without it the lines come bare, and an empty answer is nothing at all), `time` only
with `server-time`, `msgid` and client tags only with `message-tags`; without event-playback
only PRIVMSG and NOTICE, and TAGMSG only to clients with message-tags (as live delivery does);
an extended JOIN is cut back to a plain one for clients without extended-join. The rows are
trusted to be lines the server once rendered, except that a row is dropped when it has CR, LF or
NUL in it, is longer than a line may be, is not `:<source> <kind> ...`, or is of a kind the
client may not see: nothing is reparsed but JOIN lines.
"""
from __future__ import annotations

import calendar
import re
import time
from typing import NamedTuple

from ircproto.casemap import is_channel_name, is_valid_channel, is_valid_nick
from ircproto.message import (MAX_LINE, ProtocolError, escape_tag_value, format_line, parse, unescape_tag_value,
                              wire_length)

CHATHISTORY, SEARCH = "CHATHISTORY", "SEARCH"
LATEST, BEFORE, AFTER, AROUND, BETWEEN, TARGETS = "LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN", "TARGETS"
MSGID, TIMESTAMP = "msgid", "timestamp"

MAX_LIMIT = 100  # messages one query may ask for (ISUPPORT CHATHISTORY); a larger limit is clamped
MSGREFTYPES = (TIMESTAMP, MSGID)  # ISUPPORT MSGREFTYPES, in decreasing preference

# Batch types.
CHATHISTORY_BATCH = "chathistory"  # ratified: unprefixed
TARGETS_BATCH = "draft/chathistory-targets"
SEARCH_BATCH = "soju.im/search"

# FAIL codes (the chathistory spec; soju.im/search uses INVALID_PARAMS and INTERNAL_ERROR).
INVALID_PARAMS = "INVALID_PARAMS"
INVALID_TARGET = "INVALID_TARGET"
MESSAGE_ERROR = "MESSAGE_ERROR"
INVALID_MSGREFTYPE = "INVALID_MSGREFTYPE"
INTERNAL_ERROR = "INTERNAL_ERROR"

PLAIN_KINDS = frozenset({"PRIVMSG", "NOTICE"})  # all a client without event-playback may see
EVENT_KINDS = frozenset({"PRIVMSG", "NOTICE", "TAGMSG", "JOIN", "PART", "QUIT", "KICK", "NICK", "TOPIC", "MODE"})

NAME_MAX = 200  # bytes of a target's name: a syntax check only (the hub knows what exists)
ECHO_MAX = 100  # bytes of a client's parameter repeated in a FAIL; a longer one is shown as '*'

_ARITY = {LATEST: 4, BEFORE: 4, AFTER: 4, AROUND: 4, BETWEEN: 5, TARGETS: 4}  # params, subcommand included
_TIMESTAMP = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?Z\Z")
_DIGITS = re.compile(r"[0-9]+\Z")
_UNSAFE = ("\r", "\n", "\x00")


class Fail(NamedTuple):
    """A standard reply refusing the command: `FAIL <command> <code> <params...>`, the last
    param being the description."""
    command: str
    code: str
    params: tuple[str, ...]


class Record(NamedTuple):
    """One row of history as the store returns it (this, or a plain tuple of the same fields;
    `line` may be bytes, with its CRLF)."""
    msgid: str
    time_us: int
    target: str
    owner: str
    kind: str
    sender: str
    author: str
    line: str
    tags: str


# --- parsing ------------------------------------------------------------------------------------
def parse_timestamp(text: str) -> int | None:
    """`YYYY-MM-DDThh:mm:ss[.fraction]Z` (UTC) to microseconds since the epoch; None if it is
    not one. The fraction may have 1 to 9 digits (digits past the microsecond are dropped)."""
    match = _TIMESTAMP.match(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year or 1, month)[1] and hour < 24
            and minute < 60 and second < 60 and year >= 1):
        return None
    fraction = (match.group(7) or "").ljust(6, "0")[:6]
    return calendar.timegm((year, month, day, hour, minute, second)) * 1_000_000 + int(fraction)


def _ms(time_us: int) -> int:
    """To the nearest millisecond with live delivery's own arithmetic (the hub's time is
    `us / 1e6` seconds, shown as `round(ts * 1000)`), so a message's time in history is the
    one its recipients saw, to the bit."""
    return round(time_us / 1_000_000 * 1000)


def format_timestamp(time_us: int) -> str:
    """Microseconds to the server-time form, to the nearest millisecond as live delivery shows
    a message's time: `2019-01-04T14:33:26.123Z`."""
    ms = _ms(time_us)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def echo_param(param: str) -> str:
    """A client's parameter as a FAIL may repeat it: '*' for one that could not be a middle
    parameter (empty, a space, a leading ':', CR/LF/NUL) or is too long."""
    if not param or " " in param or param[0] == ":" or wire_length(param) > ECHO_MAX or \
            any(c in param for c in _UNSAFE):
        return "*"
    return param


_echo = echo_param


def _fail(code: str, *params: str, description: str, command: str = CHATHISTORY) -> Fail:
    return Fail(command, code, tuple(_echo(p) for p in params) + (description,))


def _valid_target(name: str) -> bool:
    if is_channel_name(name):
        return is_valid_channel(name, NAME_MAX)
    return is_valid_nick(name, NAME_MAX)


def _limit(text: str, max_limit: int) -> int | None:
    if _DIGITS.match(text) is None:
        return None
    value = int(text)
    return min(value, max_limit) if value > 0 else None


def _ref(sub: str, target: str, text: str, star: bool, timestamp_only: bool = False) -> tuple | Fail | None:
    """A message reference, None for `*` (where `star` allows it), or the Fail refusing it."""
    if text == "*" and star:
        return None
    kind, sep, value = text.partition("=")
    kind = kind.lower()
    if not sep or not kind:
        return _fail(INVALID_PARAMS, sub, text, description="Invalid message reference")
    if kind == TIMESTAMP:
        us = parse_timestamp(value)
        if us is None:
            return _fail(INVALID_PARAMS, sub, text, description="Invalid timestamp")
        return (TIMESTAMP, us)
    if kind == MSGID and not timestamp_only:
        if not value:
            return _fail(INVALID_PARAMS, sub, text, description="Invalid message reference")
        return (MSGID, value)
    description = "Only timestamp references are allowed here" if kind == MSGID else \
        "Unknown message reference type"
    return _fail(INVALID_MSGREFTYPE, sub, target, text, description=description)


def parse_chathistory(params: list[str], playback: bool, max_limit: int = MAX_LIMIT) -> tuple | Fail:
    """`CHATHISTORY <subcommand> ...` (the parameters after the command) to a query, or the
    Fail that answers it. Never raises."""
    if not params:
        return _fail(INVALID_PARAMS, "*", description="Insufficient parameters")
    given = params[0]
    sub = given.upper()
    arity = _ARITY.get(sub)
    if arity is None:
        return _fail(INVALID_PARAMS, given, description="Unknown subcommand")
    if len(params) < arity:
        return _fail(INVALID_PARAMS, sub, description="Insufficient parameters")
    if len(params) > arity:
        return _fail(INVALID_PARAMS, sub, description="Too many parameters")
    limit = _limit(params[-1], max_limit)
    if sub == TARGETS:
        refs = [_ref(sub, "*", p, star=False, timestamp_only=True) for p in params[1:3]]
    else:
        target = params[1]
        if not _valid_target(target):
            return _fail(INVALID_TARGET, sub, target, description="Messages could not be retrieved")
        refs = [_ref(sub, target, p, star=(sub == LATEST)) for p in params[2:arity - 1]]
    for ref in refs:
        if type(ref) is Fail:
            return ref
    if limit is None:
        return _fail(INVALID_PARAMS, sub, params[-1], description="Invalid limit")
    if sub == TARGETS:
        return (TARGETS, refs[0], refs[1], limit, playback)
    return (sub, params[1], *refs, limit, playback)


def parse_search(params: list[str], max_limit: int = MAX_LIMIT) -> tuple | Fail:
    """`SEARCH <attributes>` (message-tag syntax: `in=#chan;from=nick;after=<ts>;before=<ts>;
    text=<words>;limit=N`, values escaped as tag values) to a query, or the Fail that answers it.
    Unknown attributes are ignored and an empty `text` is no text filter, as soju does; a
    missing limit is the maximum. Never raises."""
    if not params:
        return _fail(INVALID_PARAMS, description="Insufficient parameters", command=SEARCH)
    if len(params) > 1:
        return _fail(INVALID_PARAMS, description="Too many parameters", command=SEARCH)
    attrs: dict[str, str] = {}
    for item in params[0].split(";"):
        key, _, value = item.partition("=")
        if key:
            attrs[key] = unescape_tag_value(value)
    target = sender = text = None
    after = before = None
    limit = max_limit
    for key, value in attrs.items():
        if key == "in":
            if not _valid_target(value):
                return _fail(INVALID_PARAMS, key, description="Invalid target", command=SEARCH)
            target = value
        elif key == "from":
            if not is_valid_nick(value, NAME_MAX):
                return _fail(INVALID_PARAMS, key, description="Invalid nick", command=SEARCH)
            sender = value
        elif key in ("after", "before"):
            us = parse_timestamp(value)
            if us is None:
                return _fail(INVALID_PARAMS, key, description="Invalid timestamp", command=SEARCH)
            if key == "after":
                after = us
            else:
                before = us
        elif key == "text":
            text = value or None
        elif key == "limit":
            parsed = _limit(value, max_limit)
            if parsed is None:
                return _fail(INVALID_PARAMS, key, description="Invalid limit", command=SEARCH)
            limit = parsed
    return (SEARCH, target, sender, after, before, text, limit, False)


# --- what the hub needs of a query -----------------------------------------------------------------
def query_target(query: tuple) -> str | None:
    """The one conversation a query reads (a channel or a nick, as the client gave it), or None
    (TARGETS, and SEARCH without `in`)."""
    return None if query[0] == TARGETS else query[1]


def query_limit(query: tuple) -> int:
    return query[-2]


def query_playback(query: tuple) -> bool:
    return query[-1]


def refusal(query: tuple, code: str = INVALID_TARGET) -> tuple[str, str, tuple[str, ...]]:
    """`(command, code, params)` of the D_FAIL that refuses a query: INVALID_TARGET (the target
    does not exist or the client may not read it), MESSAGE_ERROR (the store failed); for SEARCH
    an unreadable `in` is INVALID_PARAMS and a failed store INTERNAL_ERROR."""
    sub = query[0]
    if sub == SEARCH:
        if code == INVALID_TARGET:
            return (SEARCH, INVALID_PARAMS, ("in", "Invalid target"))
        return (SEARCH, INTERNAL_ERROR, ("The search could not be run",))
    if sub == TARGETS:
        return (CHATHISTORY, MESSAGE_ERROR, (sub, "*", "Messages could not be retrieved"))
    code = code if code in (INVALID_TARGET, MESSAGE_ERROR) else MESSAGE_ERROR
    return (CHATHISTORY, code, (sub, query[1], "Messages could not be retrieved"))


# --- rendering ------------------------------------------------------------------------------------
class Caps(NamedTuple):
    """What of a client's capabilities shapes its history lines."""
    batch: bool = False
    server_time: bool = False
    message_tags: bool = False
    extended_join: bool = False


def _line_bytes(line: str | bytes, kind: str) -> bytes | None:
    """A stored line as bytes without its CRLF, or None when it could break the framing or is
    not `:<source> <kind> ...` (so a row's kind is what the client really gets)."""
    data = line.encode("utf-8", "surrogateescape") if type(line) is str else bytes(line)
    if data[-2:] == b"\r\n":
        data = data[:-2]
    if data[:1] != b":" or b"\r" in data or b"\n" in data or b"\x00" in data or len(data) > MAX_LINE - 2:
        return None
    start = data.find(b" ") + 1
    end = data.find(b" ", start)
    if not start or data[start:end if end > 0 else len(data)].decode("ascii", "replace") != kind:
        return None
    return data


def _plain_join(data: bytes) -> bytes | None:
    """An extended JOIN (`JOIN #chan account :realname`) as clients without extended-join see it."""
    try:
        msg = parse(data, max_tag_data=0)
    except ProtocolError:
        return None
    if msg.command != "JOIN" or not msg.params:
        return None
    if len(msg.params) == 1:
        return data
    return format_line(msg.source, "JOIN", msg.params[0])[:-2]


def render(query: tuple, rows: list | tuple, server_name: str, ref: str, caps: Caps,
           target_name: str | None = None) -> list[bytes]:
    """The lines (CRLF-terminated bytes) answering one query for a client with these
    capabilities: a batch (reference `ref`) when it has `batch`, else the bare lines.
    `target_name` is the name the batch of a history subcommand shows (the canonical one),
    by default the one queried."""
    sub = query[0]
    out: list[bytes] = []
    if sub == TARGETS:
        if caps.batch:
            out.append(format_line(server_name, "BATCH", "+" + ref, TARGETS_BATCH))
        head = f"@batch={ref} :{server_name} CHATHISTORY TARGETS " if caps.batch else \
            f":{server_name} CHATHISTORY TARGETS "
        for row in rows:
            name, latest = row[0], row[1]
            if type(name) is str and _valid_target(name) and type(latest) is int:
                out.append(f"{head}{name} {format_timestamp(latest)}\r\n".encode("utf-8", "surrogateescape"))
    else:
        if caps.batch:
            if sub == SEARCH:
                out.append(format_line(server_name, "BATCH", "+" + ref, SEARCH_BATCH))
            else:
                out.append(format_line(server_name, "BATCH", "+" + ref, CHATHISTORY_BATCH, target_name or query[1]))
        _render_rows(out, rows, ref, caps, sub != SEARCH and query[-1])
    if caps.batch:
        out.append(format_line(server_name, "BATCH", "-" + ref))
    return out


def _render_rows(out: list[bytes], rows, ref: str, caps: Caps, playback: bool) -> None:
    """Each row: the tags this client takes, then the stored line as it is."""
    kinds = EVENT_KINDS if playback else PLAIN_KINDS
    if not caps.message_tags:
        kinds = kinds - {"TAGMSG"}  # as live delivery: TAGMSG is only for clients with message-tags
    batch_tag = f"batch={ref};" if caps.batch else ""
    server_time, message_tags, extended_join = caps.server_time, caps.message_tags, caps.extended_join
    seconds: dict[int, str] = {}  # the rows of one answer often share their second: format each once
    for row in rows:
        msgid, time_us, kind, tags = row[0], row[1], row[4], row[8]
        if kind not in kinds:
            continue
        data = _line_bytes(row[7], kind)
        if data is not None and kind == "JOIN" and not extended_join:
            data = _plain_join(data)
        if data is None:
            continue
        head = batch_tag
        if server_time:
            ms = _ms(time_us)
            second = ms // 1000
            stamp = seconds.get(second)
            if stamp is None:
                stamp = seconds[second] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            head += f"time={stamp}.{ms % 1000:03d}Z;"
        if message_tags:
            head += f"msgid={escape_tag_value(msgid)};"
            if tags and " " not in tags and not any(c in tags for c in _UNSAFE):
                head += tags + ";"
        out.append(b"@" + head[:-1].encode("utf-8", "surrogateescape") + b" " + data + b"\r\n" if head
                   else data + b"\r\n")
