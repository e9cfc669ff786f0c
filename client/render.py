"""How an Event reads, as segments each front end can colour its own way.

Also the pure pieces both front ends share: IRC formatting parsed into styled runs
(`parse_formatting`), where day separators go (`day_breaks`), where the "new since you last
looked" marker goes (`first_new`), and the unread and mention counts of each conversation
(`Activity`)."""
from __future__ import annotations

import math
import re
import time
import zlib
from dataclasses import dataclass, replace
from typing import Sequence

from client.core import Event
from client.history import clock_text
from ircproto.casemap import casefold

NICK_COLOURS = 8  # front ends map colour index 0..7 to their own palette
NICK_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789[]\\`_^{|}-")
MESSAGE_KINDS = ("message", "action", "notice")
LINK = re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+", re.IGNORECASE)
LINK_TRAILING = ".,;:!?)]}'\""  # sentence punctuation after a link is not part of it


def nick_colour(nick: str) -> int:
    """A stable colour for a nick: the same person always looks the same."""
    return zlib.crc32(casefold(nick).encode("utf-8", "surrogateescape")) % NICK_COLOURS


def segments(event: Event, me: str, show_target: bool = True, now: float | None = None) -> list[tuple[str, str]]:
    """(role, text) pairs; roles: time, target, private, nick:<n>, own, text, info, error, separator.

    The time is the event's own (the server's, for history): the hour, and the date too when it
    is not today. A search result always says where it was said. Front ends dim every segment
    of an event whose `history` is "latest" or "older". A "text" segment keeps the line's IRC
    formatting codes, for the front end to draw (`styled_runs`) or drop (`plain`); every other
    segment is plain text."""
    if event.kind == "separator":
        out = [("target", f"{event.target} ")] if show_target and event.target else []
        return out + [("separator", event.text)]
    show_target = show_target or event.history == "search"
    out = [("time", clock_text(event.ts, now) + " ")]
    if event.kind in MESSAGE_KINDS and event.nick:
        if event.private:
            label = f"[to {event.target}] " if event.own else "[private] "
            out.append(("private", label))
        elif show_target and event.target:
            out.append(("target", f"{event.target} "))
        role = "own" if event.own else f"nick:{nick_colour(event.nick)}"
        if event.kind == "action":
            out += [("text", "* "), (role, event.nick), ("text", " " + event.text)]
        elif event.kind == "notice":
            out += [(role, f"-{event.nick}-"), ("text", " " + event.text)]
        else:
            out += [(role, f"<{event.nick}>"), ("text", " " + event.text)]
        return out
    if show_target and event.target and event.kind not in ("open",):
        out.append(("target", f"{event.target} "))
    out.append(("error" if event.kind == "error" else "info", f"-- {strip_formatting(event.text)}"))
    return out


def plain(event: Event, me: str) -> str:
    return "".join(strip_formatting(text) if role == "text" else text for role, text in segments(event, me))


def mention_spans(text: str, nick: str) -> list[tuple[int, int]]:
    """Where `nick` is said in `text`, as a whole word, whatever the case (the ascii casemapping
    folds length-preservingly, so positions in the folded text are positions in the text).
    A word boundary is any character that cannot be part of a nick: "bob," and "@bob" mention
    bob, "bobby" and "bob_" do not."""
    if not nick:
        return []
    folded, target = casefold(text), casefold(nick)
    spans, start = [], 0
    while (at := folded.find(target, start)) >= 0:
        end = at + len(target)
        if (at == 0 or text[at - 1] not in NICK_CHARS) and (end == len(text) or text[end] not in NICK_CHARS):
            spans.append((at, end))
            start = end
        else:
            start = at + 1
    return spans


def mentions(event: Event, me: str) -> bool:
    """A line someone else said that names us (our own lines, and history, never count)."""
    return (event.kind in ("message", "action", "notice") and not event.own and event.nick is not None
            and event.target is not None  # a server notice naming us is no mention
            and not event.history and bool(mention_spans(event.text, me)))


def strip_formatting(text: str) -> str:
    """The text a line shows, its IRC formatting codes and other control characters gone (they
    would show as stray boxes, or ring the terminal's bell)."""
    return "".join(piece for piece, _ in parse_formatting(text))


# --- IRC formatting ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Style:
    """How a run of text looks. Colours are "#rrggbb", None for the front end's own."""

    bold: bool = False
    italic: bool = False
    underline: bool = False
    strike: bool = False
    mono: bool = False
    reverse: bool = False
    fg: str | None = None
    bg: str | None = None


PLAIN = Style()
TOGGLES = {"\x02": "bold", "\x1d": "italic", "\x1f": "underline", "\x1e": "strike", "\x11": "mono",
           "\x16": "reverse"}
RESET, COLOUR, HEX_COLOUR = "\x0f", "\x03", "\x04"
# The 16 mIRC colours, then the extended 16-98 (modern.ircdocs.horse/formatting); 99 is "default".
MIRC_COLOURS = (
    "ffffff 000000 00007f 009300 ff0000 7f0000 9c009c fc7f00 ffff00 00fc00 009393 00ffff 0000fc ff00ff 7f7f7f d2d2d2 "
    "470000 472100 474700 324700 004700 00472c 004747 002747 000047 2e0047 470047 47002a "
    "740000 743a00 747400 517400 007400 007449 007474 004074 000074 4b0074 740074 740045 "
    "b50000 b56300 b5b500 7db500 00b500 00b571 00b5b5 0063b5 0000b5 7500b5 b500b5 b5006b "
    "ff0000 ff8c00 ffff00 b2ff00 00ff00 00ffa0 00ffff 008cff 0000ff a500ff ff00ff ff0098 "
    "ff5959 ffb459 ffff71 cfff60 6fff6f 65ffc9 6dffff 59b4ff 5959ff c459ff ff66ff ff59bc "
    "ff9c9c ffd39c ffff9c e2ff9c 9cff9c 9cffdb 9cffff 9cd3ff 9c9cff dc9cff ff9cff ff94d3 "
    "000000 131313 282828 363636 4d4d4d 656565 818181 9f9f9f bcbcbc e2e2e2 ffffff").split()
# [0-9], not \d: \d takes other scripts' digits too, which no client sends as a colour.
_COLOUR_CODE = re.compile(r"(?:([0-9]{1,2})(?:,([0-9]{1,2}))?)?")
_HEX_CODE = re.compile(r"(?:([0-9a-fA-F]{6})(?:,([0-9a-fA-F]{6}))?)?")


def _mirc(number: str) -> str | None:
    index = int(number)
    return "#" + MIRC_COLOURS[index] if index < len(MIRC_COLOURS) else None  # 99: the default


def parse_formatting(text: str) -> list[tuple[str, Style]]:
    """The text as runs of (text, Style), the codes applied and gone: bold \\x02, italic \\x1d,
    underline \\x1f, strikethrough \\x1e, monospace \\x11 and reverse \\x16 toggle; \\x0f resets
    all; \\x03N[,M] sets the colours (a lone \\x03 resets them, and a comma without a digit after
    it is text) and \\x04RRGGBB[,RRGGBB] the same in hex. Other control characters are dropped, a
    tab becomes a space. Neighbouring runs never share a style, and no run is empty."""
    runs: list[tuple[str, Style]] = []
    style, piece, at, end = PLAIN, [], 0, len(text)

    def flush() -> None:
        if piece:
            joined = "".join(piece)
            if runs and runs[-1][1] == style:
                runs[-1] = (runs[-1][0] + joined, style)
            else:
                runs.append((joined, style))
            piece.clear()

    while at < end:
        char = text[at]
        at += 1
        if char >= " " and char != "\x7f":
            piece.append(char)
            continue
        if char == "\t":
            piece.append(" ")
            continue
        flush()
        if char in TOGGLES:
            name = TOGGLES[char]
            style = replace(style, **{name: not getattr(style, name)})
        elif char == RESET:
            style = PLAIN
        elif char in (COLOUR, HEX_COLOUR):
            found = (_COLOUR_CODE if char == COLOUR else _HEX_CODE).match(text, at)
            fg, bg = found.groups()
            at = found.end()
            if fg is None:
                style = replace(style, fg=None, bg=None)
            elif char == COLOUR:
                style = replace(style, fg=_mirc(fg), bg=_mirc(bg) if bg is not None else style.bg)
            else:
                style = replace(style, fg="#" + fg.lower(), bg="#" + bg.lower() if bg is not None else style.bg)
    flush()
    return runs


def styled_runs(text: str, me: str) -> list[tuple[str, str, Style]]:
    """(role, text, Style): the formatting runs, cut where a mention of `me` or a link begins
    and ends (role "mention", "link" or "text", as `split_text`). Links and mentions are found in
    the text as shown, so a code in the middle of a URL does not cut it short."""
    runs = parse_formatting(text)
    roles = split_text("".join(piece for piece, _ in runs), me)
    out: list[tuple[str, str, Style]] = []
    run_i = role_i = 0
    run_left = role_left = 0
    while run_i < len(runs) and role_i < len(roles):
        run_text, style = runs[run_i]
        role, role_text = roles[role_i]
        take = min(len(run_text) - run_left, len(role_text) - role_left)
        out.append((role, run_text[run_left:run_left + take], style))
        run_left += take
        role_left += take
        if run_left == len(run_text):
            run_i, run_left = run_i + 1, 0
        if role_left == len(role_text):
            role_i, role_left = role_i + 1, 0
    return out


def link_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    for match in LINK.finditer(text):
        end = match.end()
        while end > match.start() and text[end - 1] in LINK_TRAILING:
            end -= 1
        spans.append((match.start(), end))
    return spans


def split_text(text: str, me: str) -> list[tuple[str, str]]:
    """A line's text as (role, text) runs: "mention" where we are named, "link" for a URL, "text"."""
    marks = [(a, b, "link") for a, b in link_spans(text)]
    marks += [(a, b, "mention") for a, b in mention_spans(text, me)
              if not any(la <= a < lb for la, lb, _ in marks)]
    out, at = [], 0
    for a, b, role in sorted(marks):
        if a < at:
            continue
        if a > at:
            out.append(("text", text[at:a]))
        out.append((role, text[a:b]))
        at = b
    if at < len(text):
        out.append(("text", text[at:]))
    return out


def member_rank(symbols_held: str, symbols: str = "@+") -> int:
    """Sorting rank of a member: 0 for the highest status (operators), then each lower one, then
    everyone without a status."""
    for i, symbol in enumerate(symbols):
        if symbol in symbols_held:
            return i
    return len(symbols)


def member_rows(statuses: dict[str, str], away: set[str] | frozenset[str] = frozenset(),
                symbols: str = "@+") -> list[tuple[str, str, bool]]:
    """The people list: (label, nick, away) sorted operators, voiced, then the rest, each group
    alphabetical by the casemapping. The label carries the highest status symbol; `away` holds
    casefolded nicks."""
    order = sorted(statuses, key=lambda n: (member_rank(statuses[n], symbols), casefold(n), n))
    rows = []
    for nick in order:
        rank = member_rank(statuses[nick], symbols)
        prefix = symbols[rank] if rank < len(symbols) else ""
        rows.append((prefix + nick, nick, casefold(nick) in away))
    return rows


# --- day separators and the "new since you last looked" marker ------------------------------
NEW_LINES = "\u2500\u2500 new since you last looked \u2500\u2500"


def day_label(ts: float) -> str:
    """"── Tuesday 1 December 2026 ──", the local date of a time."""
    local = time.localtime(ts)
    return f"\u2500\u2500 {time.strftime('%A', local)} {local.tm_mday} {time.strftime('%B %Y', local)} \u2500\u2500"


def dated(event: Event) -> float | None:
    """The time a line dates the conversation with; None for a separator, which belongs to no day."""
    return None if event.kind == "separator" else event.ts


def day_breaks(stamps: Sequence[float | None], before: float | None = None) -> list[tuple[int, str]]:
    """Where day separators go among consecutive lines of one conversation: (index, label) for
    each line whose local date differs from that of the last dated line before it. `stamps` are
    the lines' times (None: a line that has no day, skipped); `before` is the time of the line
    shown above the first (None: nothing is)."""
    out = []
    last = time.localtime(before)[:3] if before is not None else None
    for i, ts in enumerate(stamps):
        if ts is None:
            continue
        day = time.localtime(ts)[:3]
        if last is not None and day != last:
            out.append((i, day_label(ts)))
        last = day
    return out


def is_new(event: Event, after: float | None) -> bool:
    """A line someone else said after `after`: one the marker can stand before."""
    return (after is not None and event.kind in MESSAGE_KINDS and not event.own and event.target is not None
            and event.ts > after)


def first_new(events: Sequence[Event], after: float | None) -> int | None:
    """The index of the first line someone else said after `after`, where the marker goes."""
    return next((i for i, event in enumerate(events) if is_new(event, after)), None)


class Activity:
    """What each conversation holds that you have not looked at, for both front ends: the unread
    and mention counts (the conversation list, the title, the prompt) and where the "new since
    you last looked" marker goes. Keys are the front end's (casefolded names).

    `note` each line as it is shown, saying whether you are looking at its conversation; `look`
    when you start looking (switching to it, the window getting the focus back); `server_read`
    for the read marker the server keeps (draft/read-marker). The marker goes before the first
    line someone else said after `marker[key]`; it moves only when you look at a conversation that
    has unread lines."""

    def __init__(self) -> None:
        self.unread: dict[str, int] = {}
        self.mentioned: dict[str, int] = {}
        self.read: dict[str, float] = {}  # the newest line's time when you last looked
        self.marker: dict[str, float] = {}  # lines said after this time are marked new
        self._first: dict[str, float] = {}  # the first unread line's time, where nothing was read before
        self._latest: dict[str, float] = {}  # the newest line's time
        self._newest_said: dict[str, float] = {}  # the newest line someone else said
        self.placed: set[str] = set()  # conversations whose marker a streaming front end has shown

    def note(self, key: str, event: Event, me: str, looking: bool) -> bool:
        """Count a line; True when it names us (the bell, a notification)."""
        named = mentions(event, me)
        said = event.kind in MESSAGE_KINDS and not event.own and event.target is not None
        if said:
            marker = self.marker.get(key)
            if looking and not event.history and marker is not None and self._newest_said.get(key, -math.inf) <= marker:
                # Nothing was new when you looked: the lines you watch arrive are not "new since".
                del self.marker[key]
            self._newest_said[key] = max(self._newest_said.get(key, -math.inf), event.ts)
        self._latest[key] = max(self._latest.get(key, -math.inf), event.ts)
        if looking:
            self.read[key] = max(self.read.get(key, -math.inf), event.ts)
        elif said and not event.history:
            if not self.unread.get(key):
                self._first[key] = event.ts
            self.unread[key] = self.unread.get(key, 0) + 1
            if named:
                self.mentioned[key] = self.mentioned.get(key, 0) + 1
        return named

    def look(self, key: str) -> float | None:
        """You look at a conversation: its counts clear, and if it had unread lines the marker
        moves to the first of them. The time of its newest line (for MARKREAD), or None."""
        if self.unread.get(key):
            self.marker[key] = self.read[key] if key in self.read else math.nextafter(self._first[key], -math.inf)
            self.placed.discard(key)
        self.unread.pop(key, None)
        self.mentioned.pop(key, None)
        self._first.pop(key, None)
        if key in self._latest:
            self.read[key] = max(self.read.get(key, -math.inf), self._latest[key])
        return self.read.get(key)

    def server_read(self, key: str, ts: float) -> None:
        """The server's read marker of a conversation (sent at a join): the lines after it are new."""
        if ts > self.read.get(key, -math.inf):
            self.read[key] = ts
        self.marker[key] = ts
        self.placed.discard(key)

    def place(self, key: str, event: Event) -> bool:
        """For a front end that draws lines as they come: True once, for the line the marker goes
        before (call after `note`)."""
        if key in self.placed or not is_new(event, self.marker.get(key)):
            return False
        self.placed.add(key)
        return True

    def counts(self, key: str) -> tuple[int, int]:
        return self.unread.get(key, 0), self.mentioned.get(key, 0)

    def totals(self) -> tuple[int, int]:
        return sum(self.unread.values()), sum(self.mentioned.values())
